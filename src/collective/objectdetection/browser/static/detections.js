/* The detections figure: boxes drawn over the image as SVG (viewBox in the original
 * image's pixels, so they scale with the image), a list of the labels linking to a
 * search, a score slider, and the editors' corrections. Data: GET/PATCH/POST
 * {content}/@detections. */

import { element, format, percent, requestJSON } from "./rest.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const POLL_INTERVAL_MS = 2000;
// Stop asking after three minutes of "pending"; a reload asks again.
const MAX_POLLS = 90;

function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

class DetectionsFigure {
    constructor(root) {
        this.root = root;
        this.url = root.dataset.odUrl;
        this.searchUrl = root.dataset.odSearchUrl;
        this.token = root.dataset.odToken;
        this.messages = JSON.parse(root.dataset.odMessages || "{}");
        this.svg = root.querySelector(".od-boxes");
        this.svgTitle = this.svg.querySelector("title");
        this.chips = root.querySelector(".od-chips");
        this.status = root.querySelector(".od-status");
        this.slider = root.querySelector(".od-threshold-input");
        this.sliderValue = root.querySelector(".od-threshold-value");
        this.list = root.querySelector(".od-labels");
        this.editor = root.querySelector(".od-editor");
        this.hiddenList = root.querySelector(".od-hidden-labels");
        this.addForm = root.querySelector(".od-add-form");
        this.addInput = root.querySelector(".od-add-input");
        this.rerunButton = root.querySelector(".od-rerun");
        this.data = null;
        this.thresholdTouched = false;
        this.polls = 0;
        this.pollTimer = null;
        this.bind();
    }

    t(key, values) {
        return format(this.messages[key] || key, values);
    }

    bind() {
        // Chip sizes change with the image's: separate them again once it is laid out.
        const image = this.root.querySelector("img");
        image?.addEventListener("load", () => this.separateChips());
        window.addEventListener("resize", () => this.separateChips());
        this.slider.addEventListener("input", () => {
            this.thresholdTouched = true;
            this.draw();
        });
        for (const container of [this.list, this.chips]) {
            container.addEventListener("mouseover", (event) => this.highlightFrom(event, true));
            container.addEventListener("mouseout", (event) => this.highlightFrom(event, false));
            container.addEventListener("focusin", (event) => this.highlightFrom(event, true));
            container.addEventListener("focusout", (event) => this.highlightFrom(event, false));
        }
        for (const container of [this.list, this.hiddenList]) {
            container.addEventListener("click", (event) => {
                const button = event.target.closest("button[data-action]");
                if (button) {
                    this.correct(button.dataset.action, button.dataset.label);
                }
            });
        }
        this.addForm.addEventListener("submit", (event) => {
            event.preventDefault();
            const label = this.addInput.value.trim().toLowerCase();
            if (label) {
                this.correct("add", label);
            }
        });
        this.rerunButton.addEventListener("click", () => this.rerun());
    }

    async load() {
        clearTimeout(this.pollTimer);
        try {
            this.show(await requestJSON(this.url));
        } catch (error) {
            this.say(this.t("load_error", { error: error.message }));
        }
    }

    show(data, notice = "") {
        this.data = data;
        if (!this.thresholdTouched && typeof data.min_score === "number") {
            this.slider.value = String(data.min_score);
        }
        this.editor.hidden = !data.can_edit;
        this.say(`${this.statusText()} ${notice}`.trim());
        this.draw();
        if (data.status === "pending" && this.polls < MAX_POLLS) {
            this.polls += 1;
            this.pollTimer = setTimeout(() => this.load(), POLL_INTERVAL_MS);
        }
    }

    statusText() {
        const data = this.data;
        const error = data.error || "";
        switch (data.status) {
            case "pending":
                return this.t("status_pending");
            case "failed":
                return this.t("status_failed", { error });
            case "skipped":
                return this.t("status_skipped", { error });
            case "done": {
                if (!data.detections.length && !(data.added_labels || []).length) {
                    return this.t("status_done_empty");
                }
                const model = data.model ? `${data.model.name} ${data.model.version || ""}`.trim() : "?";
                return this.t("status_done", { model });
            }
            default:
                return this.t("status_none");
        }
    }

    say(text) {
        this.status.textContent = text;
    }

    title(label) {
        const titles = this.data.label_titles || {};
        if (titles[label]) {
            return titles[label];
        }
        const detection = this.data.detections.find((item) => item.label === label && item.title);
        return detection ? detection.title : label;
    }

    threshold() {
        return Number(this.slider.value);
    }

    shownDetections() {
        const threshold = this.threshold();
        return this.data.detections.filter((item) => !item.hidden && item.score >= threshold);
    }

    draw() {
        if (!this.data) {
            return;
        }
        this.sliderValue.textContent = this.t("score", { percent: percent(this.threshold()) });
        const shown = this.shownDetections();
        this.drawBoxes(shown);
        this.drawLabels(shown);
        this.drawHiddenLabels();
    }

    drawBoxes(shown) {
        const image = this.data.image;
        for (const group of this.svg.querySelectorAll("g")) {
            group.remove();
        }
        this.chips.replaceChildren();
        if (!image) {
            this.svg.removeAttribute("viewBox");
            this.svgTitle.textContent = this.t("boxes_title_empty");
            return;
        }
        this.svg.setAttribute("viewBox", `0 0 ${image.width} ${image.height}`);
        this.svg.setAttribute("preserveAspectRatio", "none");
        const names = [];
        for (const detection of shown) {
            const { x_min, y_min, x_max, y_max } = detection.box;
            const group = document.createElementNS(SVG_NS, "g");
            group.setAttribute("class", "od-box");
            group.dataset.label = detection.label;
            group.dataset.score = String(detection.score);
            // A dark, wide line under a light, narrow one stays visible on any photo.
            for (const className of ["od-box-outline", "od-box-line"]) {
                const rect = document.createElementNS(SVG_NS, "rect");
                rect.setAttribute("class", className);
                rect.setAttribute("x", x_min);
                rect.setAttribute("y", y_min);
                rect.setAttribute("width", Math.max(0, x_max - x_min));
                rect.setAttribute("height", Math.max(0, y_max - y_min));
                group.append(rect);
            }
            this.svg.append(group);
            const title = this.title(detection.label);
            const score = this.t("score", { percent: percent(detection.score) });
            const chip = element("span", { class: "od-chip", "data-label": detection.label }, `${title} ${score}`);
            chip.style.left = `${(x_min / image.width) * 100}%`;
            chip.style.top = `${(y_min / image.height) * 100}%`;
            this.chips.append(chip);
            names.push(`${title} (${score})`);
        }
        this.svgTitle.textContent = names.length
            ? this.t("boxes_title", { labels: names.join(", ") })
            : this.t("boxes_title_empty");
        this.separateChips();
    }

    /* Boxes with nearly the same top-left corner (a horse also seen as a sheep) would
     * put their chips on top of each other: move each chip below those it covers. */
    separateChips() {
        const placed = [];
        for (const chip of this.chips.children) {
            chip.style.transform = "";
            let rect = chip.getBoundingClientRect();
            let shift = 0;
            for (let tries = 0; tries <= placed.length && placed.some((other) => overlaps(rect, other)); tries++) {
                shift += rect.height;
                chip.style.transform = `translateY(${shift}px)`;
                rect = chip.getBoundingClientRect();
            }
            placed.push(rect);
        }
    }

    drawLabels(shown) {
        const best = new Map();
        for (const detection of shown) {
            if (!best.has(detection.label) || best.get(detection.label) < detection.score) {
                best.set(detection.label, detection.score);
            }
        }
        const items = [...best].map(([label, score]) => ({ label, score, added: false }));
        for (const label of this.data.added_labels || []) {
            if (!best.has(label)) {
                items.push({ label, score: null, added: true });
            }
        }
        items.sort((a, b) => this.title(a.label).localeCompare(this.title(b.label)));
        this.list.replaceChildren(...items.map((item) => this.labelItem(item)));
    }

    labelItem({ label, score, added }) {
        const title = this.title(label);
        const link = element(
            "a",
            {
                class: "od-label-link",
                href: `${this.searchUrl}?detected_objects=${encodeURIComponent(label)}`,
                title: this.t("search_link", { label: title }),
            },
            title
        );
        const detail = element(
            "span",
            { class: "od-label-detail" },
            added ? this.t("added") : this.t("score", { percent: percent(score) })
        );
        const item = element("li", { class: "od-label", "data-label": label }, link, " ", detail);
        if (this.data.can_edit) {
            const action = added ? "remove" : "hide";
            item.append(" ", this.actionButton(action, label, title));
        }
        return item;
    }

    drawHiddenLabels() {
        const items = (this.data.hidden_labels || []).map((label) => {
            const title = this.title(label);
            return element(
                "li",
                { class: "od-hidden-label", "data-label": label },
                title,
                " ",
                this.actionButton("show", label, title)
            );
        });
        this.hiddenList.replaceChildren(...items);
        this.hiddenList.closest(".od-hidden").hidden = !items.length;
    }

    actionButton(action, label, title) {
        return element(
            "button",
            {
                type: "button",
                class: "od-label-action btn btn-sm btn-outline-secondary",
                "data-action": action,
                "data-label": label,
                "aria-label": this.t(`${action}_label`, { label: title }),
            },
            this.t(action)
        );
    }

    highlightFrom(event, on) {
        const item = event.target.closest("[data-label]");
        if (!item) {
            return;
        }
        const label = on ? item.dataset.label : null;
        this.root.classList.toggle("od-highlighting", Boolean(label));
        for (const node of this.root.querySelectorAll(".od-box, .od-chip, .od-label")) {
            node.classList.toggle("od-active", node.dataset.label === label);
        }
    }

    async correct(action, label) {
        const hidden = new Set(this.data.hidden_labels || []);
        const added = new Set(this.data.added_labels || []);
        if (action === "hide") {
            hidden.add(label);
        } else if (action === "show" || action === "add") {
            hidden.delete(label);
        }
        if (action === "add" && !this.data.detections.some((item) => item.label === label)) {
            added.add(label);
        } else if (action === "remove") {
            added.delete(label);
        }
        const body = { hidden_labels: [...hidden].sort(), added_labels: [...added].sort() };
        try {
            const data = await requestJSON(this.url, { method: "PATCH", body, token: this.token });
            this.show(data, this.t("saved"));
            if (action === "add") {
                this.addInput.value = "";
            }
            this.refocus(label);
        } catch (error) {
            this.say(this.t("save_error", { error: error.message }));
        }
    }

    /* The clicked button was redrawn: put the focus on what now stands for the label. */
    refocus(label) {
        if (this.root.contains(document.activeElement)) {
            return;
        }
        const target = [...this.root.querySelectorAll("[data-label] a, button[data-label]")].find(
            (node) => (node.dataset.label || node.closest("[data-label]").dataset.label) === label
        );
        (target || this.addInput).focus();
    }

    async rerun() {
        this.rerunButton.disabled = true;
        try {
            const data = await requestJSON(this.url, { method: "POST", body: {}, token: this.token });
            this.polls = 0;
            this.show(data, this.t("rerun_started"));
        } catch (error) {
            this.say(this.t("save_error", { error: error.message }));
        } finally {
            this.rerunButton.disabled = false;
        }
    }
}

for (const root of document.querySelectorAll(".od-figure")) {
    new DetectionsFigure(root).load();
}
