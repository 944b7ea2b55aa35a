// A Modbus TCP server that otwatch did not write (jsmodbus), with its own register layout and a
// scripted timeline, for tests/interop. Run: node modbus_server.js PORT
//
// It speaks JSON lines on stdout: {"event": "ready", "layout": ..., "timeline": [...]} once it
// listens; on "play" (a line on stdin) it plays the timeline, one {"event": "step", ...} per
// step as it is applied, then {"event": "done"}; on "writes" it answers {"event": "writes",
// "count": N}: the write requests (function codes 5, 6, 15, 16, 22, 23) any client sent, counted
// on the wire before jsmodbus sees them. The measurement moves every 200 ms on its own. It stops
// on SIGTERM or when stdin closes.
"use strict";

const net = require("net");
const Modbus = require("jsmodbus");

const port = Number(process.argv[2]);
const WRITE_CODES = new Set([5, 6, 15, 16, 22, 23]);

// name: {table, address, type, word order, scale (stored = value * scale), initial}
const LAYOUT = {
  line_speed_sp: {table: "holding", address: 0, type: "float32", word_order: "big", scale: 1, initial: 12.5},
  zone_temperature_sp: {table: "holding", address: 2, type: "int16", word_order: "big", scale: 10, initial: 180.0},
  recipe_no: {table: "holding", address: 10, type: "uint16", word_order: "big", scale: 1, initial: 1},
  recipe_pressure: {table: "holding", address: 11, type: "uint16", word_order: "big", scale: 10, initial: 40.0},
  recipe_time_ms: {table: "holding", address: 12, type: "uint32", word_order: "little", scale: 1, initial: 4500},
  flow_actual: {table: "holding", address: 20, type: "int16", word_order: "big", scale: 100, initial: 3.1},
  run_mode: {table: "coil", address: 0, type: "bool", initial: true},
};

// Each step `after_ms` after the previous one; `approved` is the ground truth.
const TIMELINE = [
  {after_ms: 500, tag: "line_speed_sp", value: 14.0, approved: true},
  {after_ms: 1500, tag: "zone_temperature_sp", value: 185.5, approved: false},
  // a recipe download: the select register and the block at once (one recipe switch)
  {after_ms: 1500, tag: "recipe_no", value: 2, approved: true, recipe: "press_recipe"},
  {after_ms: 0, tag: "recipe_pressure", value: 45.5, approved: true, recipe: "press_recipe"},
  {after_ms: 0, tag: "recipe_time_ms", value: 5200, approved: true, recipe: "press_recipe"},
  {after_ms: 2000, tag: "run_mode", value: false, approved: false},
];

const holding = Buffer.alloc(2 * 64);
const coils = Buffer.alloc(8);

function say(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function set(name, value) {
  const tag = LAYOUT[name];
  if (tag.type === "bool") {
    const byte = coils[tag.address >> 3];
    const bit = 1 << (tag.address & 7);
    coils[tag.address >> 3] = value ? byte | bit : byte & ~bit;
    return;
  }
  const at = 2 * tag.address;
  const stored = tag.type === "float32" ? value : Math.round(value * tag.scale);
  if (tag.type === "int16") {
    holding.writeInt16BE(stored, at);
  } else if (tag.type === "uint16") {
    holding.writeUInt16BE(stored, at);
  } else {
    const words = Buffer.alloc(4);
    if (tag.type === "float32") {
      words.writeFloatBE(stored, 0);
    } else {
      words.writeUInt32BE(stored, 0);
    }
    const [high, low] = [words.subarray(0, 2), words.subarray(2, 4)];
    const ordered = tag.word_order === "big" ? [high, low] : [low, high];
    ordered[0].copy(holding, at);
    ordered[1].copy(holding, at + 2);
  }
}

// Count write requests on the wire: an MBAP header (7 bytes, its length field counts the unit
// id and the PDU), then the function code.
function countWrites(socket, count) {
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const length = pending.readUInt16BE(4);
      if (pending.length < 6 + length) {
        break;
      }
      if (WRITE_CODES.has(pending[7] & 0x7f)) {
        count();
      }
      pending = pending.subarray(6 + length);
    }
  });
}

function main() {
  for (const [name, tag] of Object.entries(LAYOUT)) {
    set(name, tag.initial);
  }
  let writes = 0;
  const netServer = new net.Server();
  netServer.on("connection", (socket) => {
    // A client that stops with an answer still on its way resets the connection (ECONNRESET):
    // a device serves on, where an unhandled socket error would end this process.
    socket.on("error", () => {});
    countWrites(socket, () => { writes += 1; });
  });
  // jsmodbus serves the buffers as they are: a change to them is what the device shows.
  new Modbus.server.TCP(netServer, {holding, coils});

  let tick = 0;
  const process_ = setInterval(() => {  // the measurement never stands still
    tick += 1;
    set("flow_actual", 3.1 + 0.05 * Math.sin(tick));
  }, 200);

  const play = async () => {
    for (const [n, step] of TIMELINE.entries()) {
      if (step.after_ms > 0) {  // 0: the same instant (no client request is served between)
        await new Promise((done) => setTimeout(done, step.after_ms));
      }
      set(step.tag, step.value);
      say({event: "step", n, tag: step.tag, value: step.value, at: new Date().toISOString()});
    }
    say({event: "done"});
  };

  const stop = () => {
    clearInterval(process_);
    netServer.close();
    process.exit(0);
  };
  netServer.listen(port, "127.0.0.1", () => {
    say({event: "ready", endpoint: `127.0.0.1:${port}`, layout: LAYOUT, timeline: TIMELINE});
  });
  process.on("SIGTERM", stop);
  process.stdin.setEncoding("utf8");
  let pending = "";
  process.stdin.on("data", (chunk) => {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const command = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (command === "play") {
        play();
      } else if (command === "writes") {
        say({event: "writes", count: writes});
      }
    }
  });
  process.stdin.on("end", stop);
}

main();
