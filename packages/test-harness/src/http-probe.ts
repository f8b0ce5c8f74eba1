import { request } from "node:http";

/** Path the generated proxy configs answer themselves (not proxied), for readiness. */
export const HEALTH_PATH = "/__switchyard_harness/ready";

/** Status and body of a plain HTTP answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * `GET url` without keep-alive; resolves with any status. Rejects on connection errors
 * or after `timeoutMs`.
 */
export function httpGet(url: string, timeoutMs = 2000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.once("error", reject);
    });
    req.once("timeout", () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    req.once("error", reject);
    req.end();
  });
}

/** Resolves with the status code of `GET url` (any status counts as "answered"). */
export async function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  return (await httpGet(url, timeoutMs)).status;
}

/**
 * A readiness probe for the generated proxies: true once `GET <baseUrl>/__switchyard_harness/ready`
 * answers with `token`, which proves the answer comes from this instance (not from
 * another process that grabbed the port).
 */
export async function answersWithToken(baseUrl: string, token: string): Promise<boolean> {
  const answer = await httpGet(`${baseUrl}${HEALTH_PATH}`, 1000);
  return answer.status === 200 && answer.body.trim() === token;
}
