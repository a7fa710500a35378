// Starts kinesalite, the Kinesis emulator, on 127.0.0.1 and prints
// "ready PORT" once it listens.
//
//   node scripts/kinesalite.js INSTALL_DIR [PORT] [DATA_DIR]
//
// PORT 0 (the default) picks a free port. With DATA_DIR the streams are kept
// in LevelDB there and survive a restart; without it they live in memory.
// With FEAST_EXIT_WITH_STDIN=1 the emulator exits when its standard input
// closes, so it never outlives the test process that started it.
"use strict";

const [installDir, port = "0", dataDir] = process.argv.slice(2);
if (!installDir) {
  console.error("usage: node kinesalite.js INSTALL_DIR [PORT] [DATA_DIR]");
  process.exit(2);
}
const kinesalite = require(installDir + "/node_modules/kinesalite");
const options = { createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000 };
if (dataDir) options.path = dataDir;

const server = kinesalite(options);
server.on("error", (err) => {
  console.error("kinesalite: " + err.message);
  process.exit(1);
});
server.listen(+port, "127.0.0.1", () => console.log("ready " + server.address().port));

if (process.env.FEAST_EXIT_WITH_STDIN === "1") {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
