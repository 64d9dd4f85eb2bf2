// Small fetch wrapper: cookie session plus the CSRF header every mutating call needs.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

/** Fetch JSON; returns {status, data} (data is null for 204); throws ApiError on >= 400. */
export async function api(method, url, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  if (resp.status === 401) {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
    throw new ApiError(401, "not logged in");
  }
  let data = null;
  if (resp.status !== 204) {
    const text = await resp.text();
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
  }
  if (!resp.ok) {
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data;
    throw new ApiError(resp.status, detail || resp.statusText);
  }
  return { status: resp.status, data };
}

/** Split an error detail into per-question messages and general ones (FastAPI or ours). */
export function errorMessages(detail) {
  const byQuestion = {};
  const general = [];
  if (Array.isArray(detail)) {
    for (const d of detail) {
      if (d && typeof d === "object" && d.question) {
        (byQuestion[d.question] ||= []).push(String(d.error ?? d.msg ?? "invalid"));
      } else if (d && typeof d === "object" && d.msg) {
        const where = Array.isArray(d.loc) ? d.loc.join(".") : "";
        general.push(where ? `${where}: ${d.msg}` : String(d.msg));
      } else {
        general.push(typeof d === "string" ? d : JSON.stringify(d));
      }
    }
  } else if (detail) {
    general.push(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return { byQuestion, general };
}
