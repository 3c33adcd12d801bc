import types

import mqttpush


def test_all_is_sorted_and_matches_the_exports():
    assert mqttpush.__all__ == sorted(mqttpush.__all__)
    public = {
        name
        for name, value in vars(mqttpush).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(mqttpush.__all__) == public


def test_one_exception_tree():
    for name in mqttpush.__all__:
        obj = getattr(mqttpush, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, mqttpush.MqttPushError), name
    assert issubclass(mqttpush.RpcTimeoutError, TimeoutError)
    assert issubclass(mqttpush.InvalidAddressError, ValueError)
