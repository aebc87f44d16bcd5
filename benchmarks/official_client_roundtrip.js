// Invoke round trip of the official @microsoft/signalr client against the simulator, for
// benchmarks/hub_roundtrip.py. Prints one JSON line: {"samples_ms": [...]}.
// Environment: SIM_URL, BENCH_CALLS, BENCH_WARMUP.
"use strict";

const path = require("path");
const signalR = require(path.join(__dirname, "..", "tests", "conformance", "node_modules", "@microsoft/signalr"));

async function main() {
  const calls = Number(process.env.BENCH_CALLS || 1000);
  const warmup = Number(process.env.BENCH_WARMUP || 50);
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${process.env.SIM_URL}/operatorHub`, { transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  await connection.start();
  for (let i = 0; i < warmup; i++) await connection.invoke("RegisterOperatorAsync", true);
  const samples = [];
  for (let i = 0; i < calls; i++) {
    const start = process.hrtime.bigint();
    await connection.invoke("RegisterOperatorAsync", true);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  await connection.stop();
  process.stdout.write(JSON.stringify({ samples_ms: samples }) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
