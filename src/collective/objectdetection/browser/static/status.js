/* The status page: GET {site}/@detection-status, drawn into the page's skeleton;
 * "Detect missing", "Re-detect all" and "Retry" post to {site}/@detection-backfill.
 * Polls while a backfill runs or items are pending. */

import { element, format, requestJSON } from "./rest.js";

const POLL_INTERVAL_MS = 2000;

class StatusPage {
    constructor(root) {
        this.root = root;
        this.siteUrl = root.dataset.odSiteUrl;
        this.token = root.dataset.odToken;
        this.messages = JSON.parse(root.dataset.odMessages || "{}");
        this.pollTimer = null;
        for (const button of root.querySelectorAll(".od-backfill")) {
            button.addEventListener("click", () => this.backfill({ mode: button.dataset.odMode }));
        }
        root.querySelector(".od-failures").addEventListener("click", (event) => {
            const button = event.target.closest("button[data-od-uid]");
            if (button) {
                this.backfill({ uids: [button.dataset.odUid] });
            }
        });
    }

    t(key, values) {
        return format(this.messages[key] || key, values);
    }

    part(selector) {
        return this.root.querySelector(selector);
    }

    say(text) {
        this.part(".od-status-message").textContent = text;
    }

    async load() {
        clearTimeout(this.pollTimer);
        try {
            const status = await requestJSON(`${this.siteUrl}/@detection-status`);
            this.show(status);
            if (status.backfill.running || status.counts.pending || status.queue.length) {
                this.pollTimer = setTimeout(() => this.load(), POLL_INTERVAL_MS);
            }
        } catch (error) {
            this.say(this.t("load_error", { error: error.message }));
        }
    }

    show(status) {
        const detector = status.detector;
        const model = detector.model;
        const recorded = status.recorded_model;
        this.part(".od-detector-status").textContent = detector.status;
        this.part(".od-detector-status").dataset.odHealth = detector.status;
        this.part(".od-detector-addresses").textContent = detector.addresses.join(", ");
        // While the detector does not answer, the stored detections say which model.
        this.part(".od-detector-model").textContent = model
            ? [model.name, model.version, model.framework].filter(Boolean).join(" · ")
            : recorded
              ? this.t("recorded_model", { model: `${recorded.name} ${recorded.version}` })
              : this.t("no_model");
        this.part(".od-detector-error").textContent = detector.error || "–";
        this.part(".od-queue").textContent = `${status.queue.length} (${status.queue.mode})`;
        for (const row of this.root.querySelectorAll("tr[data-od-status]")) {
            row.querySelector(".od-count").textContent = String(status.counts[row.dataset.odStatus] ?? 0);
        }
        this.showBackfill(status.backfill);
        this.showFailures(status.failures);
    }

    showBackfill(backfill) {
        const progress = this.part(".od-progress");
        progress.max = Math.max(backfill.total, 1);
        progress.value = backfill.processed;
        const state = backfill.running ? "running" : backfill.finished_at ? "finished" : "idle";
        const counts = this.t("progress", { processed: backfill.processed, total: backfill.total });
        this.part(".od-backfill-text").textContent = `${this.t(state)}: ${counts}`;
        for (const button of this.root.querySelectorAll(".od-backfill")) {
            button.disabled = backfill.running;
        }
    }

    showFailures(failures) {
        const rows = failures.map((failure) =>
            element(
                "tr",
                {},
                element("td", {}, element("a", { href: failure["@id"] }, failure.title)),
                element("td", {}, failure.error),
                element("td", { class: "text-end" }, String(failure.attempts)),
                element(
                    "td",
                    { class: "text-end" },
                    element(
                        "button",
                        {
                            type: "button",
                            class: "btn btn-sm btn-outline-primary",
                            "data-od-uid": failure.UID,
                            "aria-label": this.t("retry_label", { title: failure.title }),
                        },
                        this.t("retry")
                    )
                )
            )
        );
        if (!rows.length) {
            rows.push(element("tr", {}, element("td", { colspan: 4 }, this.t("no_failures"))));
        }
        this.part(".od-failures").replaceChildren(...rows);
    }

    async backfill(body) {
        try {
            const result = await requestJSON(`${this.siteUrl}/@detection-backfill`, {
                method: "POST",
                body,
                token: this.token,
            });
            this.say(this.t("queued", { count: result.queued }));
        } catch (error) {
            this.say(this.t("action_error", { error: error.message }));
        }
        this.load();
    }
}

for (const root of document.querySelectorAll(".od-status-page")) {
    new StatusPage(root).load();
}
