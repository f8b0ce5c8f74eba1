/**
 * Query parameters of a request URL, read the way `URLSearchParams.get` reads them but
 * without building one per request: the engine reads three or four parameters of every
 * polling request, and a URLSearchParams (plus the map that kept it) was the largest
 * allocation of the request path. URLs with percent-escapes or `+` take the
 * URLSearchParams path, so decoding stays exactly the standard's.
 */

/** The path of a request URL (before `?`). */
export function urlPath(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** The first value of parameter `name` in `url`'s query, or null (as URLSearchParams.get). */
export function queryParam(url: string, name: string): string | null {
  const q = url.indexOf("?");
  if (q === -1) return null;
  if (url.indexOf("%", q) !== -1 || url.indexOf("+", q) !== -1) {
    return new URLSearchParams(url.slice(q + 1)).get(name);
  }
  const n = name.length;
  let i = q + 1;
  while (i < url.length) {
    let end = url.indexOf("&", i);
    if (end === -1) end = url.length;
    if (end > i && url.startsWith(name, i)) {
      const after = i + n;
      if (after === end) return "";
      if (url.charCodeAt(after) === 0x3d /* = */) return url.slice(after + 1, end);
    }
    i = end + 1;
  }
  return null;
}
