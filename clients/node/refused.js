#!/usr/bin/env node
// Calls SyncService.GetConnection with a caller's token and prints what the refusal carries: the
// gRPC status and the google.rpc.ErrorInfo decoded from the `grpc-status-details-bin` trailer.
//
//   node refused.js TARGET TOKEN [DISTRICT]
//
// TARGET is host:port of the sync service (plaintext), TOKEN a JWT; DISTRICT defaults to the token's
// `district` claim. Prints one JSON object and exits 0 when the call was refused, 1 when it was not.
"use strict";

const grpc = require("@grpc/grpc-js");
const { bearer, decodeStatusDetails, districtOf, loadStatusTypes, loadSyncService } = require("./common");

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
  const metadata = bearer(token);
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
