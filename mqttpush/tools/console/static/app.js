// The mqttpush console: everything it shows comes from the broker, over MQTT 5 on WebSockets.
// It subscribes to {prefix}/# and reads the wire protocol of docs/protocol.md: presence
// cards, requests and replies, notifications and receipts. It can also be a push endpoint:
// register this browser for a task, show its notifications and send a receipt for each.
'use strict';

const state = {
  agents: new Map(),      // address -> {status, from, operations, seen}
  tasks: new Map(),       // task id -> {agent, state, seq, updated}
  deliveries: new Map(),  // task|endpoint -> {task, sender, endpoint, published:Set, receipted:Set, states}
  stream: [],
  mine: new Map(),        // notification id -> notification (this browser's)
  pending: new Map(),     // correlation id -> callback
};
let cfg, client, me, dirty = false;

const $ = (id) => document.getElementById(id);
const short = (id) => (id && id.length > 12 ? id.slice(0, 8) + '…' : id);
const now = () => new Date().toISOString().slice(11, 23);
const clock = () => now().slice(0, 8);
const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');
const prop = (packet, name) => {
  const value = packet.properties && packet.properties.userProperties && packet.properties.userProperties[name];
  return Array.isArray(value) ? value[0] : value;
};
const addressOf = (domain, name) => `${name}@${domain}`;
const baseOf = (address) => { const [name, domain] = address.split('@'); return `${cfg.prefix}/${domain}/${name}`; };

function seen(address, from = 'traffic') {
  if (!address || !address.includes('@')) return;
  const agent = state.agents.get(address) || { status: 'seen', from, operations: [] };
  agent.seen = clock();
  state.agents.set(address, agent);
}

function task(id, agent, patch) {
  const t = state.tasks.get(id) || { agent, state: 'submitted', seq: 0 };
  Object.assign(t, patch, { agent: agent || t.agent, updated: clock() });
  state.tasks.set(id, t);
}

function delivery(taskId, sender, endpoint) {
  const key = `${taskId}|${endpoint}`;
  let d = state.deliveries.get(key);
  if (!d) {
    d = { task: taskId, sender, endpoint, published: new Set(), receipted: new Set(), states: null };
    state.deliveries.set(key, d);
  }
  if (sender) d.sender = sender;
  return d;
}

function onCard(domain, name, payload, packet) {
  let card = {};
  try { card = JSON.parse(payload); } catch (e) { return; }
  const address = card.address || addressOf(domain, name);
  state.agents.set(address, {
    status: card.status || prop(packet, 'mqttpush-status') || 'unknown',
    from: 'card', operations: card.operations || [], since: card.online_since, seen: clock(),
  });
}

function onRequest(domain, name, payload, packet) {
  seen(addressOf(domain, name));
  seen(prop(packet, 'mqttpush-sender'));
  let request;
  try { request = JSON.parse(payload); } catch (e) { return; }
  const params = request.params || {};
  if (request.method === 'register_push_endpoint' && params.config) {
    delivery(params.config.task_id, addressOf(domain, name), params.config.address);
  }
}

function onReply(payload, packet) {
  let reply;
  try { reply = JSON.parse(payload); } catch (e) { return; }
  const agent = prop(packet, 'mqttpush-sender');
  seen(agent);
  const cid = packet.properties && packet.properties.correlationData
    ? new TextDecoder().decode(packet.properties.correlationData) : String(reply.id);
  const waiting = state.pending.get(cid);
  if (waiting) { state.pending.delete(cid); waiting(reply); }
  const result = reply.result;
  if (result && typeof result === 'object' && !Array.isArray(result) && result.task_id && result.state) {
    task(result.task_id, agent, { state: result.state });
  }
}

function onNotification(domain, name, taskId, payload, packet) {
  let n;
  try { n = JSON.parse(payload); } catch (e) { return; }
  const endpoint = addressOf(domain, name);
  const sender = prop(packet, 'mqttpush-sender');
  seen(sender);
  task(taskId, sender, { state: n.state, seq: Math.max(n.seq, (state.tasks.get(taskId) || {}).seq || 0) });
  const d = delivery(taskId, sender, endpoint);
  if (!d.published.has(n.id)) {
    d.published.add(n.id);
    state.stream.push({ at: now(), sender, endpoint, task: taskId, seq: n.seq, state: n.state, message: n.message });
  }
  if (me && endpoint === me.address) receive(n, sender);
  if (['completed', 'failed', 'canceled'].includes(n.state) && sender) {
    setTimeout(() => deliveryStatus(sender, taskId), 800);  // once the last receipts are in
  }
}

function onReceipts(domain, name, payload) {
  let receipts;
  try { receipts = JSON.parse(payload); } catch (e) { return; }
  const sender = addressOf(domain, name);
  for (const r of Array.isArray(receipts) ? receipts : [receipts]) {
    seen(r.endpoint);
    delivery(r.task_id, sender, r.endpoint).receipted.add(r.id);
  }
}

// This browser as a reliable receiver: each notification once (by id), a receipt for every copy.
function receive(n, sender) {
  if (!state.mine.has(n.id)) state.mine.set(n.id, n);
  if (!sender) return;
  const receipt = { id: n.id, task_id: n.task_id, seq: n.seq, endpoint: me.address, handled: true };
  client.publish(`${baseOf(sender)}/ack`, JSON.stringify(receipt), {
    qos: 1,
    properties: { contentType: 'application/json', userProperties: { 'mqttpush-sender': me.address, 'mqttpush-op': 'ack' } },
  });
}

function call(address, method, params) {
  const cid = hex(16);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { state.pending.delete(cid); reject(new Error(`${method}: no reply`)); }, 10000);
    state.pending.set(cid, (reply) => { clearTimeout(timer); reply.error ? reject(new Error(reply.error.message)) : resolve(reply.result); });
    client.publish(`${baseOf(address)}/rpc`, JSON.stringify({ jsonrpc: '2.0', id: cid, method, params }), {
      qos: 1,
      properties: {
        contentType: 'application/json', responseTopic: `${cfg.prefix}/_reply/${client.options.clientId}/${cid}`,
        messageExpiryInterval: 10, userProperties: { 'mqttpush-sender': me ? me.address : client.options.clientId, 'mqttpush-op': method, 'mqttpush-cid': cid },
      },
    });
  });
}

async function deliveryStatus(sender, taskId) {
  try {
    const infos = await call(sender, 'get_delivery_status', { task_id: taskId });
    const by = new Map();
    for (const info of infos) {
      const counts = by.get(info.endpoint) || {};
      counts[info.state] = (counts[info.state] || 0) + 1;
      by.set(info.endpoint, counts);
    }
    for (const [endpoint, counts] of by) delivery(taskId, sender, endpoint).states = counts;
    dirty = true;
  } catch (e) { /* the task may be gone; the wire view stays */ }
}

function route(topic, payload, packet) {
  if (!topic.startsWith(cfg.prefix + '/')) return;
  const levels = topic.slice(cfg.prefix.length + 1).split('/');
  const text = new TextDecoder().decode(payload);
  if (levels[0] === '_reply') onReply(text, packet);
  else if (levels.length === 3 && levels[2] === 'card') onCard(levels[0], levels[1], text, packet);
  else if (levels.length === 3 && levels[2] === 'rpc') onRequest(levels[0], levels[1], text, packet);
  else if (levels.length === 3 && levels[2] === 'ack') onReceipts(levels[0], levels[1], text);
  else if (levels.length === 4 && levels[2] === 'push') onNotification(levels[0], levels[1], levels[3], text, packet);
  dirty = true;
}

function rows(tbody, items) {
  const html = items.map((cells) => '<tr>' + cells.map(([text, cls]) => `<td class="${cls || ''}">${escape(text)}</td>`).join('') + '</tr>').join('');
  if (tbody.innerHTML !== html) tbody.innerHTML = html;
}
function escape(text) { return String(text ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c])); }

function render() {
  if (!dirty) return;
  dirty = false;
  rows($('agents').tBodies[0], [...state.agents].sort().map(([address, a]) => [
    [address], [a.status, a.status], [a.from], [(a.operations || []).join(', ')], [a.seen],
  ]));
  rows($('tasks').tBodies[0], [...state.tasks].map(([id, t]) => [
    [id, 'task-id'], [t.agent], [t.state, t.state], [t.seq ? `${t.seq} notifications` : '–'], [t.updated],
  ]));
  rows($('deliveries').tBodies[0], [...state.deliveries.values()].map((d) => [
    [d.task, 'task-id'], [d.sender], [d.endpoint],
    [`published ${d.published.size} · receipts ${d.receipted.size}`],
    [d.states ? Object.entries(d.states).map(([s, n]) => `${s} ${n}`).join(' · ') : '…', d.states ? Object.keys(d.states).join(' ') : ''],
  ]));
  $('stream-count').textContent = state.stream.length;
  const stream = state.stream.slice(-200).reverse().map((s) => `<li>${escape(`${s.at}  ${s.sender} -> ${s.endpoint}  task ${short(s.task)}  #${s.seq} ${s.state}  ${s.message}`)}</li>`).join('');
  if ($('stream').innerHTML !== stream) $('stream').innerHTML = stream;
  const mine = [...state.mine.values()].sort((a, b) => a.seq - b.seq).map((n) => `<li class="${n.state}">#${n.seq} ${escape(n.state)}  ${escape(n.message)}</li>`).join('');
  if ($('mine').innerHTML !== mine) $('mine').innerHTML = mine;
}

async function register() {
  me = { address: $('my-address').value.trim() };
  const sender = $('sender-address').value.trim();
  const taskId = $('task-id').value.trim();
  try {
    await call(sender, 'register_push_endpoint', { config: { task_id: taskId, address: me.address } });
    $('endpoint-status').textContent = `registered ${me.address} for task ${taskId} on ${sender}`;
    document.body.dataset.registered = 'true';
  } catch (e) { $('endpoint-status').textContent = `not registered: ${e.message}`; }
}

async function run() {
  const sender = $('sender-address').value.trim();
  const taskId = $('task-id').value.trim();
  try {
    const status = await call(sender, 'run_task', { task_id: taskId });
    task(status.task_id, sender, { state: status.state });
    $('endpoint-status').textContent += ` · task ${status.state}`;
  } catch (e) { $('endpoint-status').textContent = `run_task failed: ${e.message}`; }
}

async function main() {
  cfg = await (await fetch('config.json')).json();
  $('where').textContent = `${cfg.ws_url} · ${cfg.prefix}/#`;
  $('my-address').value = `browser-${hex(3)}@console.fabric`;
  $('sender-address').value = cfg.sender;
  $('task-id').value = hex(16);
  $('register').addEventListener('click', register);
  $('run').addEventListener('click', run);
  client = mqtt.connect(cfg.ws_url, { protocolVersion: 5, clientId: `mqttpush-console-${hex(8)}`, clean: true, reconnectPeriod: 1000 });
  client.on('connect', () => {
    client.subscribe(`${cfg.prefix}/#`, { qos: 1 }, () => {
      $('connection').textContent = 'connected';
      $('connection').className = 'pill connected';
      document.body.dataset.connected = 'true';
    });
  });
  client.on('close', () => { $('connection').textContent = 'disconnected'; $('connection').className = 'pill'; document.body.dataset.connected = 'false'; });
  client.on('message', route);
  setInterval(render, 100);
}

main();
