// Starts dynalite, the DynamoDB emulator, on 127.0.0.1 and prints
// "ready PORT" once it listens.
//
//   node scripts/dynalite.js INSTALL_DIR [PORT]
//
// PORT 0 (the default) picks a free port. Tables live in memory. With
// FEAST_EXIT_WITH_STDIN=1 the emulator exits when its standard input
// closes, so it never outlives the test process that started it.
"use strict";

const [installDir, port = "0"] = process.argv.slice(2);
if (!installDir) {
  console.error("usage: node dynalite.js INSTALL_DIR [PORT]");
  process.exit(2);
}
const dynalite = require(installDir + "/node_modules/dynalite");
const server = dynalite({ createTableMs: 50, deleteTableMs: 50, updateTableMs: 50 });
server.on("error", (err) => {
  console.error("dynalite: " + err.message);
  process.exit(1);
});
server.listen(+port, "127.0.0.1", () => console.log("ready " + server.address().port));

if (process.env.FEAST_EXIT_WITH_STDIN === "1") {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
