#!/usr/bin/env node
// Starts (or attaches to) a district's sync with SyncRosters and follows it to its end, re-attaching
// by itself: when the stream breaks with UNAVAILABLE (a server shutting down says so with ErrorInfo
// reason SERVER_SHUTTING_DOWN and a RetryInfo delay) or ends before the run does, it waits (at least
// the RetryInfo delay, with back-off) and calls WatchSyncRun after the last event it saw, so no event
// is lost and none shows twice.
//
//   node follow.js TARGET TOKEN [DISTRICT]
//
// Prints one JSON line per event ({"run", "sequence", "state", "phase", "percent", "message"}), then one
// summary line ({"done": true, "state", "reattached", "reasons"}). Exits 0 when the run ended,
// 1 when a call failed for good (the error as JSON) or re-attaching kept failing.
"use strict";

const grpc = require("@grpc/grpc-js");
const { bearer, decodeStatusDetails, districtOf, loadStatusTypes, loadSyncService } = require("./common");

const TERMINAL = new Set(["SYNC_RUN_STATE_SUCCEEDED", "SYNC_RUN_STATE_FAILED", "SYNC_RUN_STATE_NEEDS_REVIEW"]);
const MAX_ATTEMPTS = 10;

function backoffSeconds(attempt) {
  return Math.min(5, 0.2 * 2 ** (attempt - 1));
}

function print(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

function main(argv) {
  const [target, token, districtArg] = argv;
  if (!target || !token) {
    process.stderr.write("usage: node follow.js TARGET TOKEN [DISTRICT]\n");
    process.exit(2);
  }
  const district = districtArg || districtOf(token);
  const SyncService = loadSyncService();
  const types = loadStatusTypes();
  const client = new SyncService(target, grpc.credentials.createInsecure());
  const follow = { runName: "", last: 0, attempts: 0, reattached: 0, reasons: [] };

  function retry(delaySeconds) {
    follow.attempts += 1;
    if (follow.attempts > MAX_ATTEMPTS) {
      print({ done: false, error: "could not re-attach", run: follow.runName, after: follow.last });
      process.exit(1);
    }
    follow.reattached += 1;
    setTimeout(open, 1000 * Math.max(delaySeconds, backoffSeconds(follow.attempts)));
  }

  function open() {
    const metadata = bearer(token);
    const call = follow.runName
      ? client.WatchSyncRun({ name: follow.runName, after_sequence: follow.last }, metadata)
      : client.SyncRosters({ parent: `districts/${district}` }, metadata);
    let settled = false;
    call.on("data", (response) => {
      const event = response.event;
      follow.runName = follow.runName || (response.run && response.run.name) || event.run;
      const sequence = Number(event.sequence);
      if (sequence <= follow.last) {
        return;
      }
      follow.last = sequence;
      follow.attempts = 0;
      const { state, phase, percent, message } = event;
      print({ run: follow.runName, sequence, state, phase, percent, message });
      if (TERMINAL.has(event.state)) {
        settled = true;
        call.cancel();
        client.close();
        print({ done: true, state: event.state, reattached: follow.reattached, reasons: follow.reasons });
      }
    });
    call.on("error", (error) => {
      if (settled) {
        return;
      }
      settled = true;
      const status = decodeStatusDetails(error, types);
      const info = status && status.errorInfos.length > 0 ? status.errorInfos[0] : {};
      if (error.code !== grpc.status.UNAVAILABLE) {
        print({ done: false, code: grpc.status[error.code], message: error.details, reason: info.reason || "" });
        process.exit(1);
      }
      follow.reasons.push(info.reason || "UNAVAILABLE");
      retry(status && status.retryDelays.length > 0 ? status.retryDelays[0] : 0);
    });
    call.on("end", () => {
      if (!settled) {
        settled = true;
        retry(0);
      }
    });
  }

  open();
}

main(process.argv.slice(2));
