// The gateway's HTTP/JSON API as the page uses it: one place for routes, the bearer token, errors
// (google.rpc.Status JSON) and the Server-Sent Events of a run read with fetch() streaming, since
// EventSource cannot send an Authorization header.

export const TERMINAL_STATES = new Set([
  "SYNC_RUN_STATE_SUCCEEDED",
  "SYNC_RUN_STATE_FAILED",
  "SYNC_RUN_STATE_NEEDS_REVIEW",
  "SYNC_RUN_STATE_CANCELLED",
  "SYNC_RUN_STATE_PREVIEWED",
]);
export const ACTIVE_STATES = new Set(["SYNC_RUN_STATE_QUEUED", "SYNC_RUN_STATE_RUNNING"]);

/** A refused or failed call: the HTTP status and the google.rpc.Status the gateway answered. */
export class ApiError extends Error {
  constructor(httpStatus, status) {
    super(status.message || `The request failed (HTTP ${httpStatus}).`);
    this.httpStatus = httpStatus;
    this.code = status.code;
    this.details = status.details || [];
  }

  /** Field violations of a google.rpc.BadRequest detail, as {field, description}. */
  get fieldViolations() {
    return this.details.flatMap((detail) => detail.fieldViolations || []);
  }
}

export class Api {
  constructor(token, district) {
    this.token = token;
    this.district = `districts/${district}`;
  }

  async call(method, path, body) {
    const init = { method, headers: { Authorization: `Bearer ${this.token}`, Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`/v1/${path}`, init);
    } catch {
      throw new ApiError(0, { message: "The ClassLink Settings service cannot be reached. Check your connection and try again." });
    }
    const text = await response.text();
    const json = text ? JSON.parse(text) : {};
    if (!response.ok) throw new ApiError(response.status, json);
    return json;
  }

  query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
    const text = search.toString();
    return text ? `?${text}` : "";
  }

  getConnection() { return this.call("GET", `${this.district}/connection`); }
  startSignIn(redirectUri) {
    return this.call("POST", `${this.district}/connection:startSignIn`, { redirectUri });
  }
  connectSignIn(code, state) { return this.call("POST", `${this.district}/connection:connect`, { signIn: { code, state } }); }
  connectManual(manual) { return this.call("POST", `${this.district}/connection:connect`, { manual }); }

  listMappings(pageToken) {
    return this.call("GET", `${this.district}/schoolMappings${this.query({ pageSize: 200, pageToken })}`);
  }
  mapSchools(pairs) { return this.call("POST", `${this.district}/schoolMappings:map`, { pairs }); }
  unmapSchool(name) { return this.call("POST", `${name}:unmap`, {}); }

  /** Starts a preview job (or returns the district's active one): a run followed like a sync. */
  startSyncPreview() { return this.call("POST", `${this.district}/syncRuns:preview`, {}); }
  /** A page of the plan the preview job syncRun stored. */
  previewSync(syncRun, kind, pageToken) {
    return this.call("POST", `${this.district}:previewSync`, { syncRun, pageSize: 20, pageToken, kind });
  }
  startSyncRun(approveRun) { return this.call("POST", `${this.district}/syncRuns`, approveRun ? { approveRun } : {}); }
  forceSyncNow() { return this.call("POST", `${this.district}/syncRuns:force`, {}); }
  listRuns(pageToken) { return this.call("GET", `${this.district}/syncRuns${this.query({ pageSize: 20, pageToken })}`); }
  getRun(name) { return this.call("GET", name); }
  listRunItems(name, kind) { return this.call("GET", `${name}/items${this.query({ pageSize: 100, kind })}`); }
  /** Previews (validateOnly) or lands the revert of a run; partial leaves rows changed since as they are. */
  revertRun(name, validateOnly, partial) { return this.call("POST", `${name}:revert`, { validateOnly, partial }); }

  getAutoSync() { return this.call("GET", `${this.district}/autoSync`); }
  /** Replaces every writable AutoSync field with those of autoSync. */
  setAutoSync(autoSync) { return this.call("PUT", `${this.district}/autoSync`, autoSync); }

  listArchivedTeachers() {
    return this.call("GET", `${this.district}/teachers${this.query({ state: "TEACHER_STATE_ARCHIVED", pageSize: 50 })}`);
  }
  unarchiveTeacher(name) { return this.call("POST", `${name}:unarchive`, {}); }
  teacherHistory(teacherId) {
    return this.call("GET", `${this.district}/teacherHistory${this.query({ teacherId, pageSize: 100 })}`);
  }

  /**
   * Follows a run's events until its final one, calling onEvent(event) once per sequence number.
   * A dropped stream is reopened with Last-Event-ID, so a reconnect loses and repeats nothing.
   */
  async watchRun(name, afterSequence, onEvent, signal) {
    let last = afterSequence;
    for (;;) {
      const headers = { Authorization: `Bearer ${this.token}`, Accept: "text/event-stream" };
      if (last) headers["Last-Event-ID"] = String(last);
      let finished = false;
      try {
        const response = await fetch(`/v1/${name}:watch`, { headers, signal });
        if (!response.ok) throw new ApiError(response.status, await response.json());
        for await (const message of readEvents(response.body)) {
          if (message.event === "end") return last;
          if (message.event === "error") throw new ApiError(500, JSON.parse(message.data));
          const response = JSON.parse(message.data);
          const event = response.event || response;
          const sequence = Number(event.sequence || message.id || 0);
          if (sequence && sequence <= last) continue;
          last = sequence || last;
          onEvent(event);
          if (TERMINAL_STATES.has(event.state)) finished = true;
        }
      } catch (error) {
        if (signal && signal.aborted) return last;
        if (error instanceof ApiError) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      if (finished) return last;
    }
  }
}

/** Parses a text/event-stream body into {id, event, data} messages; comments (heartbeats) are skipped. */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { id: "", event: "message", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r?\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer[newline] === "\r" ? 2 : 1));
      if (line === "") {
        if (message.data.length) yield { id: message.id, event: message.event, data: message.data.join("\n") };
        message = { id: "", event: "message", data: [] };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") message.id = value;
        else if (field === "event") message.event = value;
        else if (field === "data") message.data.push(value);
      }
    }
  }
}
