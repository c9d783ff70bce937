#!/usr/bin/env node
// Calls SyncService.GetConnection with a caller's token and prints what the refusal carries: the
// gRPC status and the google.rpc.ErrorInfo decoded from the `grpc-status-details-bin` trailer.
//
//   node refused.js TARGET TOKEN [DISTRICT]
//
// TARGET is host:port of the sync service (plaintext), TOKEN a JWT; DISTRICT defaults to the token's
// `district` claim. Prints one JSON object and exits 0 when the call was refused, 1 when it was not.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTOS = path.resolve(__dirname, "..", "..", "protos");

function loadSyncService() {
  const definition = protoLoader.loadSync("ew/sync/v1/sync_service.proto", {
    includeDirs: [PROTOS],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).ew.sync.v1.SyncService;
}

function loadStatusTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    // google/protobuf/*.proto come with protobufjs; everything else from this repository's protos/.
    if (target.startsWith("google/protobuf/")) {
      return path.join(path.dirname(require.resolve("protobufjs/package.json")), target);
    }
    return path.join(PROTOS, target);
  };
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  return {
    Status: root.lookupType("google.rpc.Status"),
    ErrorInfo: root.lookupType("google.rpc.ErrorInfo"),
  };
}

/** The `google.rpc.Status` of a failed call, with its ErrorInfo details decoded. */
function decodeStatusDetails(error, types) {
  const values = error.metadata ? error.metadata.get("grpc-status-details-bin") : [];
  if (values.length === 0) {
    return null;
  }
  const status = types.Status.decode(Buffer.from(values[0]));
  const errorInfos = status.details
    .filter((any) => any.type_url === "type.googleapis.com/google.rpc.ErrorInfo")
    .map((any) => types.ErrorInfo.toObject(types.ErrorInfo.decode(any.value)));
  return { code: status.code, message: status.message, errorInfos };
}

function districtOf(token) {
  const payload = token.split(".")[1] || "";
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8") || "{}");
  return claims.district;
}

function main(argv) {
  const [target, token, districtArg] = argv;
  if (!target || !token) {
    process.stderr.write("usage: node refused.js TARGET TOKEN [DISTRICT]\n");
    process.exit(2);
  }
  const district = districtArg || districtOf(token);
  const SyncService = loadSyncService();
  const types = loadStatusTypes();
  const client = new SyncService(target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const deadline = new Date(Date.now() + 30000);
  client.GetConnection({ name: `districts/${district}/connection` }, metadata, { deadline }, (error) => {
    client.close();
    if (!error) {
      process.stdout.write(JSON.stringify({ refused: false }) + "\n");
      process.exit(1);
    }
    const status = decodeStatusDetails(error, types);
    const info = status && status.errorInfos.length > 0 ? status.errorInfos[0] : {};
    const result = {
      refused: true,
      code: grpc.status[error.code],
      message: error.details,
      reason: info.reason || "",
      domain: info.domain || "",
      metadata: info.metadata || {},
    };
    process.stdout.write(JSON.stringify(result) + "\n");
  });
}

main(process.argv.slice(2));
