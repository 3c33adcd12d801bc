import pytest

from mqttpush import Address, InvalidAddressError, Topics


def test_address_maps_to_topics():
    topics = Topics()
    addr = Address.parse("sender@fame.fabric")
    assert (addr.name, addr.domain) == ("sender", "fame.fabric")
    assert str(addr) == "sender@fame.fabric"
    assert topics.rpc(addr) == "mqttpush/v1/fame.fabric/sender/rpc"
    assert topics.push(addr, "t1") == "mqttpush/v1/fame.fabric/sender/push/t1"
    assert topics.reply_base("c1") == "mqttpush/v1/_reply/c1"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sender",
        "@fame",
        "sender@",
        "a/b@fame",
        "a+@fame",
        "a#@fame",
        "$sys@fame",
        "a@b@c",
        "a b@fame",
        "a@fa/me",
    ],
)
def test_invalid_addresses_are_refused(bad):
    with pytest.raises(InvalidAddressError):
        Address.parse(bad)


def test_invalid_address_is_also_a_value_error_with_a_clear_message():
    with pytest.raises(ValueError, match="must have the form name@domain"):
        Address.parse("nodomain")
    with pytest.raises(InvalidAddressError, match=r"reserved by MQTT brokers"):
        Address.parse("$SYS@fame")


@pytest.mark.parametrize("prefix", ["", "a//b", "a/+/b", "#", "$share/x"])
def test_invalid_prefixes_are_refused(prefix):
    with pytest.raises(InvalidAddressError):
        Topics(prefix)


def test_task_ids_must_be_topic_levels():
    with pytest.raises(InvalidAddressError):
        Topics().push(Address.parse("a@b"), "x/y")
