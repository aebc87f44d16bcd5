// Drives the controller simulator with the official @microsoft/signalr client and prints one JSON object
// per line on stdout; tests/conformance/test_official_client.py asserts on them. Client logs go to stderr.
//
// Environment: SIM_URL (controller base URL), SIM_TOKEN (bearer token the simulator requires),
// SIM_CONTRACT ("pools", the default, or "deploymentsites": the generation the simulator speaks).
"use strict";

const signalR = require("@microsoft/signalr");

const base = process.env.SIM_URL;
const token = process.env.SIM_TOKEN;
const hubUrl = `${base}/operatorHub`;
const tenant = "conformance";
const deploymentSites = process.env.SIM_CONTRACT === "deploymentsites";
// The wire names that differ between the pool era and the DeploymentSite era.
const names = deploymentSites
  ? { registerPool: "RegisterDeploymentSiteAsync", otherRegisterPool: "RegisterPoolAsync", poolDeployed: "DeploymentSiteDeployedAsync" }
  : { registerPool: "RegisterPoolAsync", otherRegisterPool: "RegisterDeploymentSiteAsync", poolDeployed: "PoolDeployedAsync" };

const emit = (record) => process.stdout.write(JSON.stringify(record) + "\n");

const stderrLogger = {
  log(level, message) {
    if (level >= signalR.LogLevel.Information) {
      process.stderr.write(`[signalr ${signalR.LogLevel[level]}] ${message}\n`);
    }
  },
};

async function admin(path, body) {
  const response = await fetch(base + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json();
  if (!response.ok) {
    throw new Error(`admin ${path} answered ${response.status}: ${JSON.stringify(payload)}`);
  }
  return payload;
}

// Collects events and lets the script await the next one of a kind.
class Events {
  constructor() {
    this.queues = new Map();
    this.waiters = new Map();
  }
  push(kind, value) {
    const waiting = this.waiters.get(kind);
    if (waiting && waiting.length) {
      waiting.shift()(value);
      return;
    }
    if (!this.queues.has(kind)) this.queues.set(kind, []);
    this.queues.get(kind).push(value);
  }
  next(kind, timeoutMs = 5000) {
    const queued = this.queues.get(kind);
    if (queued && queued.length) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${kind}' event within ${timeoutMs} ms`)), timeoutMs);
      if (!this.waiters.has(kind)) this.waiters.set(kind, []);
      this.waiters.get(kind).push((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }
}

async function invokeOutcome(connection, method, ...args) {
  try {
    return { result: await connection.invoke(method, ...args) };
  } catch (error) {
    return { error: error.message };
  }
}

function build(events, counter, options = {}) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, {
      accessTokenFactory: () => {
        counter.tokenRequests += 1;
        return token;
      },
      ...options,
    })
    .withAutomaticReconnect({ nextRetryDelayInMilliseconds: () => 100 })
    .configureLogging(stderrLogger)
    .build();
  connection.serverTimeoutInMilliseconds = 1500;
  connection.keepAliveIntervalInMilliseconds = 500;
  for (const target of [
    "PoolDeployedAsync",
    "PoolUndeployedAsync",
    "DeploymentSiteDeployedAsync",
    "DeploymentSiteUndeployedAsync",
    "WorkloadDeployedAsync",
    "WorkloadUndeployedAsync",
    "PreUpdateTenantAsync",
  ]) {
    connection.on(target, (...args) => events.push(target, args));
  }
  connection.onreconnecting((error) => events.push("reconnecting", error ? error.message : null));
  connection.onreconnected((connectionId) => events.push("reconnected", connectionId));
  connection.onclose((error) => events.push("closed", error ? error.message : null));
  return connection;
}

async function main() {
  // Token auth: without the token, negotiate is refused and start() rejects.
  const anonymous = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl)
    .configureLogging(signalR.LogLevel.None)
    .build();
  try {
    await anonymous.start();
    emit({ step: "anonymous-start", error: null });
    await anonymous.stop();
  } catch (error) {
    emit({ step: "anonymous-start", error: error.message });
  }

  const deployedPool = (await admin("/admin/pools", { tenantId: tenant, name: "deployed", environment: "Cloud" }))
    .poolRtId;
  await admin(`/admin/pools/${deployedPool}/deploy`, {});
  const laterPool = (await admin("/admin/pools", { tenantId: tenant, name: "later", environment: "Cloud" })).poolRtId;
  emit({ step: "setup", deployedPool, laterPool });

  const events = new Events();
  const counter = { tokenRequests: 0 };
  const connection = build(events, counter);
  await connection.start();
  emit({ step: "started", connectionId: connection.connectionId });

  emit({ step: "register-operator", ...(await invokeOutcome(connection, "RegisterOperatorAsync", true)) });
  emit({ step: "register-bad-pool", ...(await invokeOutcome(connection, names.registerPool, tenant, "not-an-id")) });
  emit({ step: "unknown-method", ...(await invokeOutcome(connection, "NoSuchMethodAsync", 1)) });
  emit({ step: "wrong-arity", ...(await invokeOutcome(connection, names.registerPool, tenant)) });
  emit({ step: "other-generation", ...(await invokeOutcome(connection, names.otherRegisterPool, tenant, deployedPool)) });
  emit({ step: "register-pool", ...(await invokeOutcome(connection, names.registerPool, tenant, deployedPool)) });
  await connection.send("ReportWorkloadDeploymentProgressAsync", {
    tenantId: tenant,
    workloadName: "none",
    workloadRtId: "000000000000000000000000",
    message: "fire and forget",
  });
  emit({ step: "sent-non-blocking" });

  await admin(`/admin/pools/${laterPool}/deploy`, {});
  emit({ step: "push-pool-deployed", arguments: await events.next(names.poolDeployed) });

  const workload = (
    await admin("/admin/workloads", {
      tenantId: tenant,
      poolRtId: deployedPool,
      name: "mesh-adapter",
      workloadType: "Adapter",
      repositoryUrl: "https://charts.example.invalid",
      chartName: "octo-mesh-adapter",
      values: [{ path: "oauth.clientSecret", value: "s3cr3t", isSecret: true }],
    })
  ).workloadRtId;
  await admin(`/admin/workloads/${workload}/deploy`, {});
  emit({ step: "push-workload-deployed", workloadRtId: workload, arguments: await events.next("WorkloadDeployedAsync") });

  for (const kind of ["close-reconnect", "drop", "restart"]) {
    const before = connection.connectionId;
    await admin("/admin/faults", { kind });
    const reconnecting = await events.next("reconnecting");
    const reconnected = await events.next("reconnected");
    const again = await invokeOutcome(connection, "RegisterOperatorAsync", true);
    emit({ step: "reconnect", kind, before, reconnecting, reconnected, ...again });
  }

  // Half-open: the server goes silent; the client notices by its server timeout and comes back after a thaw.
  await admin("/admin/faults", { kind: "freeze" });
  const silent = await events.next("reconnecting", 6000);
  await admin("/admin/faults", { kind: "thaw" });
  const back = await events.next("reconnected", 6000);
  emit({ step: "freeze", reconnecting: silent, reconnected: back, ...(await invokeOutcome(connection, "RegisterOperatorAsync", true)) });

  // A Close with an error and no allowReconnect ends the connection for good.
  await admin("/admin/faults", { kind: "close-error" });
  const closedWith = await events.next("closed");
  emit({ step: "close-error", closed: closedWith, state: connection.state, tokenRequests: counter.tokenRequests });

  // Skip negotiation (WebSockets only) and a message over the server's 32 KB limit.
  const directEvents = new Events();
  const direct = build(directEvents, counter, {
    skipNegotiation: true,
    transport: signalR.HttpTransportType.WebSockets,
  });
  await direct.start();
  emit({ step: "skip-negotiation", ...(await invokeOutcome(direct, "RegisterOperatorAsync", null)) });
  const oversized = await invokeOutcome(direct, "ReportWorkloadDeploymentProgressAsync", {
    tenantId: tenant,
    workloadName: "big",
    workloadRtId: workload,
    message: "x".repeat(40 * 1024),
  });
  emit({ step: "oversized", ...oversized, closed: await directEvents.next("closed"), state: direct.state });
}

main().then(
  () => process.exit(0),
  (error) => {
    emit({ step: "failed", error: String(error && error.stack ? error.stack : error) });
    process.exit(1);
  },
);
