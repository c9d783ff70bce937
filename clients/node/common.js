// What the Node examples share: the SyncService loaded from this repository's protos/, and the
// google.rpc.Status details (ErrorInfo, RetryInfo) of a failed call decoded with protobufjs.
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
    RetryInfo: root.lookupType("google.rpc.RetryInfo"),
  };
}

/** The `google.rpc.Status` of a failed call, with its ErrorInfo and RetryInfo details decoded. */
function decodeStatusDetails(error, types) {
  const values = error.metadata ? error.metadata.get("grpc-status-details-bin") : [];
  if (values.length === 0) {
    return null;
  }
  const status = types.Status.decode(Buffer.from(values[0]));
  const errorInfos = status.details
    .filter((any) => any.type_url === "type.googleapis.com/google.rpc.ErrorInfo")
    .map((any) => types.ErrorInfo.toObject(types.ErrorInfo.decode(any.value)));
  const retryDelays = status.details
    .filter((any) => any.type_url === "type.googleapis.com/google.rpc.RetryInfo")
    .map((any) => types.RetryInfo.decode(any.value).retryDelay || {})
    .map((delay) => Number(delay.seconds || 0) + (delay.nanos || 0) / 1e9);
  return { code: status.code, message: status.message, errorInfos, retryDelays };
}

function districtOf(token) {
  const payload = token.split(".")[1] || "";
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8") || "{}");
  return claims.district;
}

/** Call metadata carrying the bearer token. */
function bearer(token) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

module.exports = { bearer, decodeStatusDetails, districtOf, loadStatusTypes, loadSyncService };
