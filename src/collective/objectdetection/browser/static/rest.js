/* The add-on's REST API as the browser sees it: the session cookie for identity and
 * plone.protect's token in the X-CSRF-TOKEN header for every write. */

export class RequestError extends Error {
    constructor(message, status) {
        super(message);
        this.status = status;
    }
}

export async function requestJSON(url, { method = "GET", body, token } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) {
        headers["Content-Type"] = "application/json";
    }
    if (token) {
        headers["X-CSRF-TOKEN"] = token;
    }
    const response = await fetch(url, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) {
        return null;
    }
    let data = null;
    try {
        data = await response.json();
    } catch {
        data = null;
    }
    if (!response.ok) {
        const detail = data && (data.message || (data.error && data.error.message));
        throw new RequestError(detail || `${response.status} ${response.statusText}`, response.status);
    }
    return data;
}

/* Fills ${name} placeholders left in a translated message. */
export function format(message, values = {}) {
    return message.replace(/\$\{(\w+)\}/g, (match, key) =>
        key in values ? String(values[key]) : match
    );
}

export function percent(score) {
    return Math.round(score * 100);
}

/* Creates an element with attributes and children (strings become text). */
export function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
        if (value !== undefined && value !== null && value !== false) {
            node.setAttribute(name, value === true ? "" : String(value));
        }
    }
    for (const child of children) {
        node.append(child);
    }
    return node;
}
