// An OPC UA server that otwatch did not write (node-opcua), with its own layout and a scripted
// timeline, for tests/interop. Run: node opcua_server.js PORT PKI_DIR
//
// It speaks JSON lines on stdout: {"event": "ready", "layout": ..., "timeline": [...]} once it
// listens; on "play" (a line on stdin) it plays the timeline, one {"event": "step", ...} per
// step as it is applied, then {"event": "done"}; on "writes" it answers {"event": "writes",
// "count": N}, the Write (and Call, AddNodes, DeleteNodes, HistoryUpdate) requests any client
// sent. The measurement moves every 200 ms on its own, as a process value does. It stops on
// SIGTERM or when stdin closes.
"use strict";

const {
  OPCUAServer, OPCUACertificateManager, Variant, DataType, SecurityPolicy, MessageSecurityMode,
} = require("node-opcua");

const NAMESPACE = "urn:interop:node-opcua:extruder";
const port = Number(process.argv[2]);
const pki = process.argv[3];

// name: [node id, browse path under Objects, data type, initial value]
const LAYOUT = {
  zone_temperature_sp: ["Extruder.Zone1.TemperatureSP", "Extruder/Zone1/TemperatureSP", "Double", 210.0],
  zone_temperature: ["Extruder.Zone1.Temperature", "Extruder/Zone1/Temperature", "Double", 209.6],
  screw_speed_sp: ["Extruder.ScrewSpeedSP", "Extruder/ScrewSpeedSP", "Float", 80.0],
  recipe_id: ["Extruder.Recipe.Id", "Extruder/Recipe/Id", "String", "R-1"],
  recipe_version: ["Extruder.Recipe.Version", "Extruder/Recipe/Version", "Int32", 1],
  melt_temperature: ["Extruder.Recipe.MeltTemperature", "Extruder/Recipe/MeltTemperature", "Double", 205.0],
  lot: ["Extruder.Lot", "Extruder/Lot", "String", "L-100"],
};

// Each step `after_ms` after the previous one; `approved` is the ground truth.
const TIMELINE = [
  {after_ms: 500, tag: "zone_temperature_sp", value: 215.0, approved: true},
  {after_ms: 1500, tag: "screw_speed_sp", value: 95.0, approved: false},
  // a recipe download: id, version and a parameter at once (one recipe switch)
  {after_ms: 1500, tag: "recipe_id", value: "R-2", approved: true, recipe: "extruder_recipe"},
  {after_ms: 0, tag: "recipe_version", value: 3, approved: true, recipe: "extruder_recipe"},
  {after_ms: 0, tag: "melt_temperature", value: 212.5, approved: true, recipe: "extruder_recipe"},
  {after_ms: 2000, tag: "zone_temperature_sp", value: 225.0, approved: false},
];

const WRITING = new Set(["WriteRequest", "CallRequest", "AddNodesRequest", "DeleteNodesRequest",
  "HistoryUpdateRequest", "AddReferencesRequest", "DeleteReferencesRequest"]);

function say(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function variant(type, value) {
  return new Variant({dataType: DataType[type], value});
}

async function main() {
  const certificates = new OPCUACertificateManager({
    rootFolder: pki, automaticallyAcceptUnknownCertificate: true,
  });
  const server = new OPCUAServer({
    port,
    hostname: "127.0.0.1",
    resourcePath: "/interop/extruder",
    allowAnonymous: true,
    securityPolicies: [SecurityPolicy.None],
    securityModes: [MessageSecurityMode.None],
    serverCertificateManager: certificates,
    buildInfo: {productName: "interop extruder (node-opcua)"},
  });
  let writes = 0;
  server.on("request", (request) => {
    if (WRITING.has(request.constructor.name)) {
      writes += 1;
    }
  });
  await server.initialize();
  const space = server.engine.addressSpace;
  const ns = space.registerNamespace(NAMESPACE);
  const folders = {};
  const folder = (path) => {
    if (!folders[path]) {
      const parts = path.split(".");
      const parent = parts.length === 1 ? space.rootFolder.objects : folder(parts.slice(0, -1).join("."));
      folders[path] = ns.addFolder(parent, {browseName: parts[parts.length - 1], nodeId: `s=${path}`});
    }
    return folders[path];
  };
  const variables = {};
  for (const [name, [nodeId, , type, initial]] of Object.entries(LAYOUT)) {
    const parts = nodeId.split(".");
    variables[name] = ns.addVariable({
      componentOf: folder(parts.slice(0, -1).join(".")),
      browseName: parts[parts.length - 1],
      nodeId: `s=${nodeId}`,
      dataType: type,
      minimumSamplingInterval: 100,
      value: variant(type, initial),
    });
  }
  const set = (name, value) => variables[name].setValueFromSource(variant(LAYOUT[name][2], value));

  let tick = 0;
  const process_ = setInterval(() => {  // the measurement never stands still
    tick += 1;
    const target = variables.zone_temperature_sp.readValue().value.value;
    set("zone_temperature", Math.round((target - 0.4 + 0.3 * Math.sin(tick)) * 1000) / 1000);
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

  await server.start();
  const layout = Object.fromEntries(Object.entries(LAYOUT).map(
    ([name, [nodeId, path, type, initial]]) => [name, {node: nodeId, path, type, initial}]));
  say({event: "ready", endpoint: server.getEndpointUrl(), namespace: NAMESPACE, layout,
    timeline: TIMELINE});

  const stop = async () => {
    clearInterval(process_);
    await server.shutdown(0);
    process.exit(0);
  };
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

main().catch((error) => {
  process.stderr.write(`interop OPC UA server failed: ${error.stack || error}\n`);
  process.exit(1);
});
