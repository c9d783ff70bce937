// The ClassLink Settings page: Connect ClassLink → Setup Sync → Preview Sync → Begin ClassLink Sync,
// then AutoSync, Force Sync Now, run history, approvals and archived teachers. Every screen reads
// the gateway again, so closing the page and opening it later shows the district as it is now.
// A preview is a job like a sync (reading a big district's ClassLink takes minutes): the progress
// screen follows it, then the preview screen pages the plan it stored.

import { ACTIVE_STATES, Api, ApiError } from "./api.js";
import { claimsOf, obtainToken } from "./auth.js";

const $ = (id) => document.getElementById(id);
const SCREENS = ["loading", "signin", "connect", "mapping", "preview", "progress", "manage"];
const UNMAPPED = new Set(["MAPPING_ORIGIN_UNMAPPED", "MAPPING_ORIGIN_NONE"]);
const CONNECT_FIELDS = { serverUrl: "server-url", clientId: "client-id", clientSecret: "client-secret", authMethod: "auth-method" };
const PHASES = {
  SYNC_PHASE_QUEUED: "Waiting to start",
  SYNC_PHASE_CONNECTING: "Connecting to ClassLink",
  SYNC_PHASE_READING_SCHOOLS: "Reading schools",
  SYNC_PHASE_READING_TEACHERS: "Reading teachers",
  SYNC_PHASE_PLANNING: "Planning the changes",
  SYNC_PHASE_CREATING_SCHOOLS: "Creating schools",
  SYNC_PHASE_SYNCING_TEACHERS: "Syncing teachers",
  SYNC_PHASE_ARCHIVING: "Archiving teachers",
  SYNC_PHASE_COMMITTING: "Saving",
  SYNC_PHASE_DONE: "Done",
};
const PREVIEW = "SYNC_TRIGGER_PREVIEW";
// What the progress screen says while it follows a sync (or a revert), and while it follows a preview.
const FOLLOWING = {
  sync: {
    title: "Data from ClassLink is syncing",
    note: "The sync goes on without this page: you may close it and come back at any time.",
    live: "Sync",
  },
  preview: {
    title: "Preparing the preview",
    note: "The preview changes nothing. It goes on without this page: you may close it and come back at any time.",
    live: "Preview",
  },
};

let api;
let watching = null;
let currentAutoSync = {};
let autoSyncSaves = 0;
let historyRuns = [];
let reverting = null;
let following = FOLLOWING.sync;

/** Builds an element: el("li", {class: "x", onclick: f}, "text", child). Text is never parsed as HTML. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function show(screen) {
  for (const name of SCREENS) $(`screen-${name}`).hidden = name !== screen;
  const heading = $(`screen-${screen}`).querySelector("h2");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

function notify(text, kind = "success") {
  $("notice").replaceChildren(text ? el("p", { class: kind }, text) : "");
}

function showError(error) {
  $("error").textContent = error ? error.message : "";
}

/** Runs an action, showing its error (and field violations, when a form is given) instead of throwing. */
async function attempt(action, form) {
  showError(null);
  if (form) {
    for (const id of Object.values(CONNECT_FIELDS)) {
      $(`${id}-error`).textContent = "";
      $(id).removeAttribute("aria-invalid");
    }
  }
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showError(error);
    if (form) showFieldViolations(error);
    return undefined;
  }
}

function showFieldViolations(error) {
  for (const violation of error.fieldViolations) {
    const key = violation.field.split(".").pop().replace(/_([a-z])/g, (_, c) => c.toUpperCase());
    const id = CONNECT_FIELDS[key];
    if (id) {
      $(`${id}-error`).textContent = violation.description;
      $(id).setAttribute("aria-invalid", "true");
    }
  }
}

const label = (value, prefix) => (value || "").replace(prefix, "").toLowerCase().replace(/_/g, " ");
const when = (time) => (time ? new Date(time).toLocaleString() : "");
// proto3 JSON leaves empty values out: a field that had none reads "(none)", not "undefined".
const fieldChangeText = (change) => `${change.field}: ${change.oldValue || "(none)"} → ${change.newValue || "(none)"};`;

// Connect ClassLink -------------------------------------------------------------------------------

function redirectUri() {
  return `${window.location.origin}${window.location.pathname}`;
}

async function signInWithClassLink() {
  const started = await attempt(() => api.startSignIn(redirectUri()));
  if (started) window.location.assign(started.authorizationUrl);
}

async function finishSignIn(params) {
  window.history.replaceState(null, "", window.location.pathname);
  if (params.get("error")) {
    showError(new Error("ClassLink sign-in was cancelled or refused. Try again, or enter your credentials."));
    return false;
  }
  return Boolean(await attempt(() => api.connectSignIn(params.get("code"), params.get("state"))));
}

async function connectManually(event) {
  event.preventDefault();
  const form = event.target;
  const manual = {
    serverUrl: form.serverUrl.value.trim(),
    clientId: form.clientId.value.trim(),
    clientSecret: form.clientSecret.value,
    authMethod: form.authMethod.value,
  };
  if (await attempt(() => api.connectManual(manual), form)) await connected();
}

async function connected() {
  notify("Connected Successfully! Your ClassLink account is connected.");
  await showMapping();
}

// Setup Sync --------------------------------------------------------------------------------------

async function allMappings() {
  const mappings = [];
  let ewOnly = [];
  let pageToken = "";
  do {
    const page = await api.listMappings(pageToken);
    mappings.push(...(page.schoolMappings || []));
    if (!pageToken) ewOnly = page.ewOnlySchools || [];
    pageToken = page.nextPageToken || "";
  } while (pageToken);
  return { mappings, ewOnly };
}

function choice(group, value, text, extra) {
  const id = `${group}-${value}`;
  return el("li", {}, el("label", { for: id }, el("input", { type: "radio", name: group, id, value }), " ", text), extra);
}

function suggestionsOf(mapping) {
  const suggestions = mapping.suggestions || [];
  if (!suggestions.length) return null;
  return el(
    "div",
    { class: "suggestions" },
    "Suggested: ",
    ...suggestions.map((suggestion) =>
      el(
        "button",
        {
          type: "button",
          "aria-label": `Choose ${suggestion.ewSchoolName} for ${mapping.classlinkSchoolName}`,
          onclick: () => selectPair(mapping.classlinkSchoolId, suggestion.ewSchoolId),
        },
        `${suggestion.ewSchoolName} (${Math.round(suggestion.score)}% alike)`,
      ),
    ),
  );
}

function selectPair(classlinkId, ewId) {
  const left = $(`classlink-${classlinkId}`);
  const right = $(`ew-${ewId}`);
  if (left) left.checked = true;
  if (right) right.checked = true;
}

async function showMapping() {
  const loaded = await attempt(allMappings);
  if (!loaded) return;
  const unmapped = loaded.mappings.filter((mapping) => UNMAPPED.has(mapping.origin));
  const mapped = loaded.mappings.filter((mapping) => !UNMAPPED.has(mapping.origin));
  $("unmapped-list").replaceChildren(
    ...unmapped.map((mapping) => choice("classlink", mapping.classlinkSchoolId, mapping.classlinkSchoolName, suggestionsOf(mapping))),
  );
  $("ew-list").replaceChildren(...loaded.ewOnly.map((school) => choice("ew", school.ewSchoolId, school.ewSchoolName)));
  $("mapped-list").replaceChildren(
    ...mapped.map((mapping) =>
      el(
        "li",
        {},
        `${mapping.classlinkSchoolName} → ${mapping.ewSchoolName || "new school in Education Walkthrough"} `,
        el("span", { class: "muted" }, `(${label(mapping.origin, "MAPPING_ORIGIN_")})`),
        el(
          "button",
          { type: "button", "aria-label": `Remove mapping of ${mapping.classlinkSchoolName}`, onclick: () => unmap(mapping) },
          "✕",
        ),
      ),
    ),
  );
  show("mapping");
}

async function mapSelected() {
  const left = document.querySelector("input[name=classlink]:checked");
  const right = document.querySelector("input[name=ew]:checked");
  if (!left || !right) {
    showError(new Error("Select a ClassLink school on the left and an Education Walkthrough school on the right."));
    return;
  }
  if (await attempt(() => api.mapSchools([{ classlinkSchoolId: left.value, ewSchoolId: right.value }]))) await showMapping();
}

async function unmap(mapping) {
  if (await attempt(() => api.unmapSchool(mapping.name))) await showMapping();
}

// Preview Sync ------------------------------------------------------------------------------------

let previewJob = "";
let previewPage = "";

function describeItem(item) {
  const parts = [item.displayName || item.classlinkId];
  if (item.email) parts.push(`<${item.email}>`);
  if (item.skipReason) parts.push(`— ${label(item.skipReason, "SKIP_REASON_")}`);
  if (item.reason) parts.push(`— ${item.reason}`);
  parts.push(...(item.fieldChanges || []).map(fieldChangeText));
  return el("li", {}, parts.join(" "));
}

function renderCounts(summary) {
  const skipped = (summary.skipped || []).reduce((total, skip) => total + Number(skip.count || 0), 0);
  const rows = [
    ["Schools to create", summary.schoolsCreated],
    ["Teachers to add", summary.teachersAdded],
    ["Teachers to update", summary.teachersUpdated],
    ["Teachers to archive", summary.teachersArchived],
    ["Teachers to reactivate", summary.teachersReactivated],
    ["Teachers unchanged", summary.teachersUnchanged],
    ["Rows skipped", skipped],
  ];
  $("preview-counts").replaceChildren(
    ...rows.map(([name, count]) => el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, String(count || 0)))),
    ...(summary.skipped || []).map((skip) =>
      el("tr", {}, el("th", { scope: "row" }, `  skipped: ${label(skip.reason, "SKIP_REASON_")}`), el("td", {}, String(skip.count))),
    ),
  );
}

async function loadPreview(more) {
  const kind = $("preview-kind").value;
  const page = await attempt(() => api.previewSync(previewJob, kind, more ? previewPage : ""));
  if (!page) return false;
  previewPage = page.nextPageToken || "";
  const items = (page.items || []).map(describeItem);
  if (more) $("preview-items").append(...items);
  else $("preview-items").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "Nothing of this kind.")]));
  $("preview-more").hidden = !previewPage;
  renderCounts(page.summary || {});
  const guard = page.guard || {};
  $("guard").replaceChildren(
    el(
      "p",
      { class: guard.needsReview ? "verdict review" : "verdict" },
      guard.needsReview
        ? `Needs review: ${guard.message || "this sync would archive many teachers"}. The run will wait for your approval.`
        : "The safety check passed: the sync can apply these changes.",
    ),
  );
  return true;
}

async function startPreview() {
  notify("");
  await begin(() => api.startSyncPreview());
}

/** Shows the plan a preview job stored, from its first page. */
async function showPreview(run) {
  previewJob = run;
  if (await loadPreview(false)) show("preview");
}

// Begin ClassLink Sync ----------------------------------------------------------------------------

function renderProgress(percent, phase, event) {
  const current = Number($("progress-bar").getAttribute("aria-valuenow"));
  const shown = Math.max(current, percent);
  $("progress-bar").setAttribute("aria-valuenow", String(shown));
  $("progress-fill").style.width = `${shown}%`;
  $("progress-percent").textContent = `${shown}%`;
  const counts = event && event.total ? ` (${event.done || 0} of ${event.total})` : "";
  $("progress-phase").textContent = `${PHASES[phase] || "Working"}${counts}`;
  // The run's own words while it works (a ClassLink Retry-After wait, say); its outcome says the end.
  if (event) $("progress-message").textContent = ACTIVE_STATES.has(event.state) ? event.message || "" : "";
  if (shown === 100 || shown - Number($("progress-live").dataset.announced || 0) >= 25) {
    $("progress-live").dataset.announced = String(shown);
    $("progress-live").textContent = `${following.live} ${shown}% complete: ${PHASES[phase] || ""}`;
  }
}

async function showProgress(run) {
  following = run.trigger === PREVIEW ? FOLLOWING.preview : FOLLOWING.sync;
  $("progress-title").textContent = following.title;
  $("progress-note").textContent = following.note;
  $("progress-message").textContent = "";
  $("progress-bar").setAttribute("aria-valuenow", "0");
  $("progress-live").dataset.announced = "0";
  renderProgress(run.percent || 0, run.phase);
  $("progress-outcome").textContent = "";
  $("progress-note").hidden = false;
  $("progress-continue").hidden = true;
  $("progress-run").dataset.run = run.name;
  $("progress-run").textContent = `Requested by ${run.requestedBy || "you"} at ${when(run.createTime)}`;
  show("progress");
  if (watching) watching.abort();
  const controller = new AbortController();
  watching = controller;
  let final = null;
  await attempt(() =>
    api.watchRun(run.name, Number(run.lastSequence || 0), (event) => {
      renderProgress(event.percent || 0, event.phase, event);
      final = event;
    }, controller.signal),
  );
  const aborted = controller.signal.aborted;
  if (!final && !aborted) {
    // The stream had nothing after the run's last event: it had ended already. Show how it ended.
    const current = await attempt(() => api.getRun(run.name));
    if (current) {
      renderProgress(current.run.percent || 0, current.run.phase);
      final = { ...current.run, message: current.run.errorMessage };
    }
  }
  if (final && !aborted) await finished(final, run);
}

async function finished(event, run) {
  if (run.trigger === PREVIEW && event.state === "SYNC_RUN_STATE_PREVIEWED") {
    await showPreview(run.name);
    return;
  }
  const messages =
    run.trigger === PREVIEW
      ? {
          SYNC_RUN_STATE_FAILED: `The preview failed. ${event.message || ""}`,
          SYNC_RUN_STATE_CANCELLED: "The preview was cancelled.",
        }
      : {
          SYNC_RUN_STATE_SUCCEEDED:
            run.trigger === "SYNC_TRIGGER_REVERT"
              ? "Revert complete: the run's changes are undone."
              : "Sync complete. Education Walkthrough now matches ClassLink.",
          SYNC_RUN_STATE_NEEDS_REVIEW: "This sync needs your review before it changes anything: approve it under Needs review.",
          SYNC_RUN_STATE_FAILED: `The sync failed and changed nothing. ${event.message || ""}`,
          SYNC_RUN_STATE_CANCELLED: "The sync was cancelled and changed nothing.",
        };
  $("progress-outcome").textContent = messages[event.state] || "";
  $("progress-outcome").dataset.kind = event.state === "SYNC_RUN_STATE_SUCCEEDED" ? "success" : "warning";
  $("progress-note").hidden = true;
  $("progress-continue").hidden = false;
  $("progress-continue").focus();
}

async function leaveProgress() {
  const outcome = $("progress-outcome");
  // A preview that did not end with a plan goes back to the mapping, whose "Done Mapping" tries again.
  if (following === FOLLOWING.preview) await showMapping();
  else await showManage();
  notify(outcome.textContent, outcome.dataset.kind);
}

async function begin(action) {
  const started = await attempt(action);
  if (started) await showProgress(started.run);
}

// Manage: AutoSync, Force Sync Now, history, approvals, archived teachers ------------------------

async function showManage() {
  const [runs, autoSync, archived] = await Promise.all([
    attempt(() => api.listRuns("")),
    attempt(() => api.getAutoSync()),
    attempt(() => api.listArchivedTeachers()),
  ]);
  const list = (runs && runs.runs) || [];
  renderAutoSync((autoSync && autoSync.autoSync) || {}, list.some((run) => run.state === "SYNC_RUN_STATE_SUCCEEDED"));
  renderReviews(list);
  historyRuns = list;
  $("revert-panel").hidden = true;
  renderHistory(list);
  renderArchived((archived && archived.teachers) || []);
  show("manage");
}

function renderAutoSync(autoSync, hasSucceeded) {
  currentAutoSync = autoSync;
  $("autosync-enabled").checked = Boolean(autoSync.enabled);
  $("autosync-enabled").disabled = !hasSucceeded;
  if (autoSync.cadence && autoSync.cadence !== "AUTO_SYNC_CADENCE_UNSPECIFIED") $("autosync-cadence").value = autoSync.cadence;
  $("autosync-next").textContent =
    autoSync.enabled && autoSync.nextRunTime ? `Next run: ${when(autoSync.nextRunTime)} (${autoSync.timeZone} time zone)` : "";
  $("autosync-hint").textContent = hasSucceeded ? "" : "AutoSync can be turned on after a first successful sync.";
}

async function saveAutoSync() {
  const { day, hour, pauseWindows } = currentAutoSync;
  // AutoSync runs at the district's local hour: the administrator's time zone unless one is set.
  const timeZone = currentAutoSync.timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
  const autoSync = { day, hour, timeZone, pauseWindows, enabled: $("autosync-enabled").checked, cadence: $("autosync-cadence").value };
  const save = ++autoSyncSaves;
  const saved = await attempt(() => api.setAutoSync(autoSync));
  if (save !== autoSyncSaves) return; // a later change is on its way; its answer is the one to show
  if (saved) {
    renderAutoSync(saved.autoSync, true);
    notify(saved.autoSync.enabled ? "AutoSync is on." : "AutoSync is off.");
  } else {
    $("autosync-enabled").checked = Boolean(currentAutoSync.enabled);
  }
}

function renderReviews(runs) {
  const approved = new Set(runs.map((run) => run.approvedRun).filter(Boolean));
  const waiting = runs.filter((run) => run.state === "SYNC_RUN_STATE_NEEDS_REVIEW" && !approved.has(run.name));
  $("review-list").replaceChildren(
    ...(waiting.length
      ? waiting.map((run) =>
          el(
            "li",
            {},
            `${when(run.createTime)}: ${(run.guard && run.guard.message) || "This sync would archive many teachers."} `,
            el("button", { type: "button", class: "primary", onclick: () => begin(() => api.startSyncRun(run.name)) }, "Approve"),
          ),
        )
      : [el("li", { class: "muted" }, "Nothing waits for your review.")]),
  );
}

function summaryText(run) {
  const summary = run.summary;
  if (!summary) return "";
  const [added, updated, archived] = [summary.teachersAdded || 0, summary.teachersUpdated || 0, summary.teachersArchived || 0];
  if (run.trigger === PREVIEW) return `Preview only, nothing changed: would add ${added}, update ${updated}, archive ${archived}`;
  return `${added} added, ${updated} updated, ${archived} archived`;
}

async function showProblems(run, cell) {
  const page = await attempt(() => api.listRunItems(run.name, "PLAN_ITEM_KIND_SKIP"));
  if (!page) return;
  const problems = page.items || [];
  cell.replaceChildren(
    el("ul", {}, ...(problems.length ? problems.map(describeItem) : [el("li", { class: "muted" }, "No problems.")])),
  );
}

function renderHistory(runs) {
  $("history-rows").replaceChildren(
    ...runs.map((run) => {
      const problems = el("td", {});
      problems.append(
        el("button", { type: "button", "aria-label": `Show problems of the run of ${when(run.createTime)}`, onclick: () => showProblems(run, problems) }, "Show problems"),
      );
      return el(
        "tr",
        {},
        el("td", {}, when(run.startTime || run.createTime)),
        el("td", {}, label(run.trigger, "SYNC_TRIGGER_")),
        el("td", {}, label(run.state, "SYNC_RUN_STATE_")),
        el("td", {}, run.errorMessage || summaryText(run)),
        problems,
        el("td", {}, revertible(run) ? el("button", { type: "button", "aria-label": `Revert the run of ${when(run.createTime)}`, onclick: () => previewRevert(run) }, "Revert") : null),
      );
    }),
  );
}

// Revert a run: preview (validateOnly) first, then land it and follow it like a sync ---------------

const revertible = (run) => run.state === "SYNC_RUN_STATE_SUCCEEDED" && run.trigger !== "SYNC_TRIGGER_REVERT";

/** "the approval run of <time>" for a run of the history shown, else the run's id. */
function describeRun(name, trigger) {
  const run = historyRuns.find((candidate) => candidate.name === name);
  const kind = label(trigger || (run && run.trigger), "SYNC_TRIGGER_");
  return run ? `the ${kind} run of ${when(run.startTime || run.createTime)}` : `the ${kind} run ${name.split("/").pop()}`;
}

function describeUndo(item) {
  const what = `${label(item.subject, "CHANGE_SUBJECT_")} ${item.displayName || item.subjectId}`;
  return el("li", {}, `${what} — undo ${label(item.undone, "CHANGE_ACTION_")}`);
}

function describeConflict(conflict) {
  const who = conflict.laterRun ? describeRun(conflict.laterRun) : "someone outside the sync";
  const what = `${label(conflict.subject, "CHANGE_SUBJECT_")} ${conflict.displayName || conflict.subjectId}`;
  return el("li", { class: "conflict" }, `${what} — changed since by ${who}`);
}

async function previewRevert(run) {
  notify("");
  const preview = await attempt(() => api.revertRun(run.name, true, false));
  if (!preview) return;
  const items = preview.items || [];
  const conflicts = preview.conflicts || [];
  reverting = run;
  $("revert-title").textContent = `Revert the ${label(run.trigger, "SYNC_TRIGGER_")} run of ${when(run.startTime || run.createTime)}`;
  $("revert-summary").textContent =
    `${items.length} change(s) would be undone` + (conflicts.length ? `; ${conflicts.length} row(s) were changed again since.` : ".");
  $("revert-items").replaceChildren(...(items.length ? items.map(describeUndo) : [el("li", { class: "muted" }, "Nothing to undo.")]));
  $("revert-conflicts-intro").hidden = !conflicts.length;
  $("revert-conflicts").replaceChildren(...conflicts.map(describeConflict));
  $("revert-confirm").disabled = !items.length;
  $("revert-partial").hidden = !(conflicts.length && items.length);
  $("revert-panel").hidden = false;
  $("revert-title").tabIndex = -1;
  $("revert-title").focus();
}

async function landRevert(partial) {
  const run = reverting;
  const landed = await attempt(() => api.revertRun(run.name, false, partial));
  if (!landed) return;
  reverting = null;
  $("revert-panel").hidden = true;
  await showProgress(landed.run);
}

function cancelRevert() {
  reverting = null;
  $("revert-panel").hidden = true;
  showError(null);
}

function renderArchived(teachers) {
  $("archived-list").replaceChildren(
    ...(teachers.length
      ? teachers.map((teacher) => {
          const name = `${teacher.givenName} ${teacher.familyName}`;
          return el(
            "li",
            {},
            `${name} <${teacher.email}> `,
            el("button", { type: "button", "aria-label": `History of ${name}`, onclick: () => showTeacherHistory(teacher, name) }, "History"),
            " ",
            el("button", { type: "button", "aria-label": `Unarchive ${name}`, onclick: () => unarchive(teacher, name) }, "Unarchive"),
          );
        })
      : [el("li", { class: "muted" }, "No archived teachers.")]),
  );
}

async function unarchive(teacher, name) {
  if (await attempt(() => api.unarchiveTeacher(teacher.name))) {
    await showManage();
    notify(`${name} is active again.`);
  }
}

// A teacher's history: every change a run made, oldest first ("why was this teacher archived?") --

function describeEntry(entry) {
  const parts = [`${when(entry.time)}: ${label(entry.action, "CHANGE_ACTION_")}`];
  if (entry.reason) parts.push(`— ${entry.reason}`);
  parts.push(...(entry.fieldChanges || []).map(fieldChangeText));
  if ((entry.schoolsAdded || []).length) parts.push(`joined ${entry.schoolsAdded.length} school(s)`);
  if ((entry.schoolsRemoved || []).length) parts.push(`left ${entry.schoolsRemoved.length} school(s)`);
  parts.push(`(${describeRun(entry.run, entry.trigger)}, requested by ${entry.requestedBy || "the sync"})`);
  return el("li", {}, parts.join(" "));
}

async function showTeacherHistory(teacher, name) {
  const page = await attempt(() => api.teacherHistory(teacher.teacherId));
  if (!page) return;
  const entries = page.entries || [];
  $("teacher-history-title").textContent = `History of ${name}`;
  $("teacher-history-entries").replaceChildren(
    ...(entries.length ? entries.map(describeEntry) : [el("li", { class: "muted" }, "No sync changed this teacher.")]),
  );
  $("teacher-history").showModal();
  $("teacher-history-close").focus();
}

// Start -------------------------------------------------------------------------------------------

async function route() {
  const connection = await api.getConnection().catch((error) => {
    if (error instanceof ApiError && error.httpStatus === 404) return null;
    throw error;
  });
  if (!connection) {
    show("connect");
    return;
  }
  const runs = ((await api.listRuns("")).runs || []);
  // A sync under way comes first; a preview job beside it is followed only when no sync is.
  const active = runs.filter((run) => ACTIVE_STATES.has(run.state));
  const current = active.find((run) => run.trigger !== PREVIEW) || active[0];
  if (current) await showProgress(current);
  else if (runs.some((run) => run.trigger !== PREVIEW)) await showManage();
  else await showMapping();
}

function wire() {
  $("sso-button").addEventListener("click", signInWithClassLink);
  $("connect-form").addEventListener("submit", connectManually);
  $("map-button").addEventListener("click", mapSelected);
  $("done-mapping").addEventListener("click", startPreview);
  $("preview-edit").addEventListener("click", showMapping);
  $("preview-kind").addEventListener("change", () => loadPreview(false));
  $("preview-more").addEventListener("click", () => loadPreview(true));
  $("begin-sync").addEventListener("click", () => begin(() => api.startSyncRun("")));
  $("force-sync").addEventListener("click", () => begin(() => api.forceSyncNow()));
  $("edit-mapping").addEventListener("click", showMapping);
  $("progress-continue").addEventListener("click", leaveProgress);
  $("autosync-enabled").addEventListener("change", saveAutoSync);
  $("autosync-cadence").addEventListener("change", saveAutoSync);
  $("revert-confirm").addEventListener("click", () => landRevert(false));
  $("revert-partial").addEventListener("click", () => landRevert(true));
  $("revert-cancel").addEventListener("click", cancelRevert);
  $("teacher-history-close").addEventListener("click", () => $("teacher-history").close());
}

async function main() {
  wire();
  const token = await obtainToken();
  const claims = token && claimsOf(token);
  if (!claims || !claims.district) {
    show("signin");
    return;
  }
  $("who").textContent = `${claims.sub || ""} · district ${claims.district}`;
  api = new Api(token, claims.district);
  const params = new URLSearchParams(window.location.search);
  if ((params.get("code") && params.get("state")) || params.get("error")) {
    if (await finishSignIn(params)) {
      await connected();
      return;
    }
  }
  try {
    await route();
  } catch (error) {
    showError(error);
  }
}

main();
