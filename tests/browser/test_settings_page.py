"""The ClassLink Settings page in a real Chromium against real processes, screen by screen.

Each test clicks through what a district administrator does; the assertions read what the page shows
(and, where the page's word is not enough, what the services hold).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from ew.client.errors import NotFoundError
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2
from playwright.sync_api import Page, expect

from services.oneroster_sandbox.truth import active_schools, syncable_teachers
from tests.browser.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONNECTED = "Connected Successfully! Your ClassLink account is connected."
Shot = Callable[[Page, str], None]
Opener = Callable[[str], Page]


def near_match(name: str) -> str:
    """An EW name a person sees as the same school but the matcher does not map on its own."""
    for long, short in (("Elementary", "Elem"), ("Middle School", "MS"), ("High School", "HS")):
        if long in name:
            return name.replace(long, short, 1)
    return f"{name} Campus"


def percent_of(page: Page) -> int:
    return int(page.get_by_role("progressbar").get_attribute("aria-valuenow") or "0")


def sync_to_the_end(page: Page, screenshot: Shot, name: str) -> None:
    """Follow the bar on the progress screen to 100 % and the page's return to the manage screen."""
    expect(page.get_by_role("heading", name="Data from ClassLink is syncing")).to_be_visible()
    screenshot(page, f"{name}-progress")
    expect(page.locator("#progress-percent")).to_have_text("100%", timeout=90_000)
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#progress-live")).to_contain_text("100% complete")
    expect(page.locator("#progress-outcome")).not_to_be_empty()
    screenshot(page, f"{name}-finished")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="ClassLink sync")).to_be_visible()


def preview_to_the_plan(page: Page, stack: Stack, screenshot: Shot, name: str) -> None:
    """Done Mapping starts a preview job: follow its bar, while ClassLink is slow, to the plan it stored."""
    # Every teachers page answers 3 s late (a stack launched with a small page cap has several) until
    # the bar has been seen reading them; then the job ends.
    stack.deployment.sandbox.set_faults([{"kind": "slow", "delay": 3, "times": -1, "path": "teachers"}])
    page.get_by_role("button", name="Done Mapping").click()
    expect(page.get_by_role("heading", name="Preparing the preview")).to_be_visible()
    expect(page.locator("#progress-message")).to_have_text("Reading teachers from ClassLink")
    expect(page.get_by_role("progressbar")).not_to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#progress-note")).to_contain_text("The preview changes nothing")
    screenshot(page, f"{name}-progress")
    stack.deployment.sandbox.clear_faults()
    expect(page.get_by_role("heading", name="Preview Sync")).to_be_visible(timeout=60_000)
    # The bar reached 100 % only when the plan was stored, and never spoke of a sync.
    expect(page.locator("#progress-live")).to_have_text(re.compile(r"^Preview 100% complete"))


def connect_by_credentials(page: Page, stack: Stack) -> None:
    tenant = stack.deployment.sandbox.tenant()
    page.get_by_label("Server URL").fill(tenant.server_url)
    page.get_by_label("Client ID").fill(tenant.client_id)
    page.get_by_label("Client secret").fill(tenant.client_secret)
    page.get_by_label("Authentication method").select_option("AUTH_METHOD_OAUTH1")
    page.get_by_role("button", name="Connect", exact=True).click()


def test_connect_map_preview_sync_autosync_and_force(
    launch: Callable[..., Stack], open_page: Opener, screenshot: Shot
) -> None:
    stack = launch(seed=11, schools=6, teachers=60, page_cap=5)
    truth = stack.deployment.sandbox.roster()
    schools = sorted(active_schools(truth), key=lambda school: school["name"])
    identical, abbreviated = schools[0]["name"].strip(), schools[1]["name"].strip()
    stack.deployment.roster.batch_create_schools(
        stack.deployment.district_id, [identical, near_match(abbreviated), "District Office"]
    )
    page = open_page(stack.page_url)
    expect(page.get_by_role("heading", name="Connect ClassLink")).to_be_visible()
    screenshot(page, "connect")

    page.get_by_label("Server URL").fill("not a url")
    page.get_by_label("Client secret").fill("x")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("alert")).not_to_be_empty()
    expect(page.locator("#server-url-error")).not_to_be_empty()
    screenshot(page, "connect-error")

    connect_by_credentials(page, stack)
    expect(page.locator("#notice")).to_have_text(CONNECTED)
    expect(page.get_by_role("heading", name="Setup Sync")).to_be_visible()
    mapped = page.locator("#mapped-list")
    expect(mapped).to_contain_text(f"{identical} → {identical} (auto)")
    screenshot(page, "mapping")

    # A near match is only suggested: map it by hand from its suggestion.
    page.get_by_role("button", name=f"Choose {near_match(abbreviated)} for {abbreviated}").click()
    page.get_by_role("button", name="Map Schools").click()
    expect(mapped).to_contain_text(f"{abbreviated} → {near_match(abbreviated)} (manual)")
    # ✕ removes it: the school is back on the left; then map it again with the two lists.
    page.get_by_role("button", name=f"Remove mapping of {abbreviated}").click()
    expect(mapped).not_to_contain_text(abbreviated)
    page.get_by_role("radio", name=abbreviated, exact=True).check()
    page.get_by_role("radio", name=near_match(abbreviated), exact=True).check()
    page.get_by_role("button", name="Map Schools").click()
    expect(mapped).to_contain_text(f"{abbreviated} → {near_match(abbreviated)} (manual)")
    screenshot(page, "mapping-done")

    preview_to_the_plan(page, stack, screenshot, "first-preview")
    added = len(syncable_teachers(truth))
    expect(page.get_by_role("row", name="Teachers to add")).to_contain_text(str(added))
    expect(page.locator("#guard")).to_contain_text("safety check passed")
    expect(page.locator("#preview-items")).to_contain_text(schools[2]["name"].strip())
    page.get_by_label("Show").select_option("PLAN_ITEM_KIND_ADD_TEACHER")
    expect(page.locator("#preview-items li")).to_have_count(min(added, 20))
    page.get_by_role("button", name="Show more").click()
    expect(page.locator("#preview-items li")).to_have_count(min(added, 40))
    screenshot(page, "preview")
    page.get_by_role("button", name="Edit").click()
    expect(page.get_by_role("heading", name="Setup Sync")).to_be_visible()
    page.get_by_role("button", name="Done Mapping").click()

    page.get_by_role("button", name="Begin ClassLink Sync").click()
    sync_to_the_end(page, screenshot, "first")
    expect(page.locator("#notice")).to_contain_text("Sync complete")
    rows = page.locator("#history-rows tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("succeeded")
    # The two preview jobs are listed as what they were: previews that changed nothing.
    previews = rows.filter(has_text="previewed")
    expect(previews).to_have_count(2)
    for index in range(2):
        expect(previews.nth(index)).to_contain_text("preview")
        expect(previews.nth(index)).to_contain_text(f"Preview only, nothing changed: would add {added}")
    # The rows ClassLink sent that could not sync, and why (the sandbox always has a few).
    rows.first.get_by_role("button", name="Show problems").click()
    expect(rows.first).to_contain_text("duplicate email")

    toggle = page.get_by_role("switch", name="AutoSync with ClassLink")
    expect(toggle).to_be_enabled()
    page.get_by_label("Cadence").select_option("AUTO_SYNC_CADENCE_DAILY")
    toggle.check()
    expect(page.locator("#notice")).to_have_text("AutoSync is on.")
    expect(page.locator("#autosync-next")).to_contain_text("Next run:")
    auto = stack.deployment.sync.get_autosync(stack.deployment.district_id)
    assert auto.enabled and auto.cadence == sync_pb2.AUTO_SYNC_CADENCE_DAILY
    screenshot(page, "manage")

    page.get_by_role("button", name="Force Sync Now").click()
    sync_to_the_end(page, screenshot, "force")
    expect(page.locator("#history-rows tr")).to_have_count(4)
    expect(page.locator("#history-rows tr").first).to_contain_text("force")
    expect(page.locator("#history-rows tr").first).to_contain_text("succeeded")


def test_connect_by_single_sign_on(launch: Callable[..., Stack], open_page: Opener, screenshot: Shot) -> None:
    stack = launch(schools=3, teachers=20)
    page = open_page(stack.page_url)

    # By keyboard: the screen's heading has the focus; Tab reaches the sign-in button, Enter presses it.
    expect(page.get_by_role("heading", name="Connect ClassLink")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in with ClassLink")).to_be_focused()
    page.keyboard.press("Enter")

    # ClassLink's sign-in sends the browser back to the page with ?code=…&state=…
    expect(page.locator("#notice")).to_have_text(CONNECTED)
    expect(page.get_by_role("heading", name="Setup Sync")).to_be_visible()
    assert "code=" not in page.url
    connection = stack.deployment.sync.get_connection(stack.deployment.district_id)
    assert connection.connect_method == sync_pb2.CONNECT_METHOD_SIGN_IN
    assert connection.tenant_id == stack.deployment.sandbox.tenant().tenant_id
    screenshot(page, "signed-in")


def test_a_refused_single_sign_on_says_so_and_connects_nothing(
    launch: Callable[..., Stack], open_page: Opener, screenshot: Shot
) -> None:
    stack = launch(schools=3, teachers=20)
    page = open_page(stack.page_url)
    # The administrator refuses at ClassLink's sign-in (the sandbox refuses the login "deny").
    sign_in = f"{stack.deployment.sandbox.sso['launchpad_url']}/oauth2/v2/auth?*"
    page.route(sign_in, lambda route: route.continue_(url=f"{route.request.url}&login_hint=deny"))

    page.get_by_role("button", name="Sign in with ClassLink").click()

    expect(page.get_by_role("alert")).to_contain_text("ClassLink sign-in was cancelled or refused")
    expect(page.get_by_role("heading", name="Connect ClassLink")).to_be_visible()
    assert "error=" not in page.url
    screenshot(page, "refused")
    with pytest.raises(NotFoundError):
        stack.deployment.sync.get_connection(stack.deployment.district_id)


def test_closing_the_page_mid_sync_and_reopening_it_shows_the_same_run(
    launch: Callable[..., Stack], open_page: Opener, screenshot: Shot
) -> None:
    stack = launch(schools=3, teachers=60, page_cap=5)
    stack.deployment.connect()
    page = open_page(stack.page_url)
    page.get_by_role("button", name="Done Mapping").click()
    expect(page.get_by_role("heading", name="Preview Sync")).to_be_visible()
    # Every teachers page answers 4 s late, so the run outlasts closing and reopening the page by far;
    # clearing the faults afterwards lets it finish.
    stack.deployment.sandbox.set_faults([{"kind": "slow", "delay": 4, "times": -1, "path": "teachers"}])
    page.get_by_role("button", name="Begin ClassLink Sync").click()
    expect(page.get_by_role("progressbar")).not_to_have_attribute("aria-valuenow", "0")
    run = page.locator("#progress-run").get_attribute("data-run")
    before = percent_of(page)
    screenshot(page, "before-close")
    page.context.close()

    reopened = open_page(stack.page_url)
    expect(reopened.get_by_role("heading", name="Data from ClassLink is syncing")).to_be_visible()
    assert reopened.locator("#progress-run").get_attribute("data-run") == run
    assert percent_of(reopened) >= before
    expect(reopened.get_by_role("button", name="Continue")).to_be_hidden()
    screenshot(reopened, "reopened")
    stack.deployment.sandbox.clear_faults()
    sync_to_the_end(reopened, screenshot, "reopened")
    assert stack.deployment.sync.get_run(str(run)).state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED


def remove_teachers(stack: Stack, rows: list[dict[str, Any]]) -> None:
    stack.deployment.sandbox.mutate([{"op": "remove_user", "sourcedId": row["sourcedId"]} for row in rows])


def test_needs_review_then_approve_unarchive_history_and_revert(
    launch: Callable[..., Stack], open_page: Opener, screenshot: Shot
) -> None:
    stack = launch(schools=3, teachers=40)
    deployment = stack.deployment
    deployment.connect()
    assert (
        list(deployment.sync.sync_rosters(deployment.district_id))[-1].state
        == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    )
    leavers = syncable_teachers(deployment.sandbox.roster())[:12]
    remove_teachers(stack, leavers)
    page = open_page(stack.page_url)
    expect(page.get_by_role("heading", name="ClassLink sync")).to_be_visible()

    page.get_by_role("button", name="Setup Sync").click()
    page.get_by_role("button", name="Done Mapping").click()
    expect(page.locator("#guard")).to_contain_text("Needs review")
    expect(page.get_by_role("row", name="Teachers to archive")).to_contain_text("12")
    screenshot(page, "preview-needs-review")
    page.get_by_role("button", name="Begin ClassLink Sync").click()
    expect(page.locator("#progress-outcome")).to_contain_text("needs your review", timeout=60_000)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#notice")).to_contain_text("needs your review")
    review = page.locator("#review-list")
    expect(review.get_by_role("button", name="Approve")).to_have_count(1)
    expect(page.locator("#archived-list")).to_contain_text("No archived teachers.")
    screenshot(page, "needs-review")

    review.get_by_role("button", name="Approve").click()
    sync_to_the_end(page, screenshot, "approved")
    expect(review).to_contain_text("Nothing waits for your review.")
    archived = page.locator("#archived-list li")
    expect(archived).to_have_count(12)
    screenshot(page, "archived")

    leaver = leavers[0]
    name = f"{leaver['givenName']} {leaver['familyName']}".strip()
    page.get_by_role("button", name=f"Unarchive {name}").click()
    expect(page.locator("#notice")).to_have_text(f"{name} is active again.")
    expect(archived).to_have_count(11)
    teacher = next(iter(deployment.roster.list_teachers(deployment.district_id, email=leaver["email"])))
    assert teacher.state == roster_pb2.TEACHER_STATE_ACTIVE

    # Why was a teacher archived? Their history says so, with the run that did it.
    other = leavers[1]
    other_name = f"{other['givenName']} {other['familyName']}".strip()
    page.get_by_role("button", name=f"History of {other_name}").click()
    history = page.get_by_role("dialog", name=f"History of {other_name}")
    expect(history).to_contain_text("archived — No longer in ClassLink")
    expect(history).to_contain_text("approval run")
    screenshot(page, "teacher-history")
    history.get_by_role("button", name="Close").click()
    expect(history).to_be_hidden()

    # Revert the approved run. The teacher unarchived by hand was changed since: the whole revert is
    # refused naming them, and "Revert the rest" undoes the other archives.
    approval = page.locator("#history-rows tr").filter(has_text="approval")
    approval.get_by_role("button", name=re.compile("^Revert the run of")).click()
    panel = page.get_by_role("region", name=re.compile("^Revert the approval run"))
    undone = panel.get_by_role("list", name="What the revert undoes").get_by_role("listitem")
    expect(undone).to_have_count(len(leavers) - 1)
    expect(undone.filter(has_text=other["email"])).to_contain_text("undo archived")
    changed = panel.get_by_role("list", name="Rows changed since")
    expect(changed).to_contain_text(leaver["email"])
    expect(changed).to_contain_text("someone outside the sync")
    screenshot(page, "revert-preview")
    panel.get_by_role("button", name="Revert", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be reverted as a whole")
    panel.get_by_role("button", name="Revert the rest").click()
    sync_to_the_end(page, screenshot, "reverted")
    expect(page.locator("#notice")).to_contain_text("Revert complete")
    expect(page.locator("#history-rows tr").first).to_contain_text("revert")
    expect(page.locator("#archived-list")).to_have_text("No archived teachers.")
    for row in leavers:
        teacher = next(iter(deployment.roster.list_teachers(deployment.district_id, email=row["email"])))
        assert teacher.state == roster_pb2.TEACHER_STATE_ACTIVE, row["email"]


def test_a_preview_that_fails_says_why_and_done_mapping_tries_again(
    launch: Callable[..., Stack], open_page: Opener, screenshot: Shot
) -> None:
    stack = launch(schools=3, teachers=20, page_cap=5)
    stack.deployment.connect()
    stack.deployment.sandbox.set_faults([{"kind": "status", "status": 403, "times": -1, "path": "teachers"}])
    page = open_page(stack.page_url)

    page.get_by_role("button", name="Done Mapping").click()
    outcome = page.locator("#progress-outcome")
    expect(outcome).to_contain_text("The preview failed.", timeout=60_000)
    expect(outcome).not_to_contain_text("Sync complete")
    screenshot(page, "preview-failed")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Setup Sync")).to_be_visible()
    expect(page.locator("#notice")).to_contain_text("The preview failed.")
    runs = stack.deployment.sync.list_runs(stack.deployment.district_id).runs
    assert [(run.trigger, run.state) for run in runs] == [
        (sync_pb2.SYNC_TRIGGER_PREVIEW, sync_pb2.SYNC_RUN_STATE_FAILED)
    ]

    stack.deployment.sandbox.clear_faults()
    preview_to_the_plan(page, stack, screenshot, "retried")
    expect(page.locator("#guard")).to_contain_text("safety check passed")
