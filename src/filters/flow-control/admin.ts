/**
 * Admin endpoint `GET /policies`: the flow-control policies in force (document order: the first
 * match applies), each with its source and passed/limited/rejected counters, and the rejected
 * documents with their errors. Counters are read from the metrics text the admin server serves,
 * which with worker processes is already the sum over all workers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FlowControlSettings } from '../../config/snapshot.js';
import { FLOW_DECISIONS, FLOW_METRIC, type FlowDecision } from './metrics.js';

export interface PoliciesAdminDeps {
  flowControl(): FlowControlSettings;
  /** Prometheus text of the process (aggregated over workers). */
  metricsText(): Promise<string>;
}

type Counts = Record<string, Record<FlowDecision, number>>;

/** `capa_flowcontrol_requests_total{policy="x",decision="passed"} 3` lines → counts by policy. */
export function countsFromText(text: string): Counts {
  const out: Counts = {};
  const re = new RegExp(`^${FLOW_METRIC}\\{([^}]*)\\}\\s+(\\S+)`, 'gm');
  for (const m of text.matchAll(re)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    const policy = String(labels.policy ?? '');
    const decision = labels.decision as FlowDecision;
    if (!FLOW_DECISIONS.includes(decision)) continue;
    (out[policy] ??= { passed: 0, limited: 0, rejected: 0 })[decision] += Number(m[2]);
  }
  return out;
}

export function policiesAdminHandler(deps: PoliciesAdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain; charset=utf-8' });
      res.end('policies: GET only\n');
      return;
    }
    const fc = deps.flowControl();
    deps.metricsText().then(
      (text) => {
        const counts = countsFromText(text);
        const body = {
          policyDirs: fc.policyDirs,
          policies: fc.policies.map((p) => ({
            name: p.name,
            source: p.source,
            hash: p.hash,
            stale: p.stale,
            spec: p.spec,
            counters: counts[p.name] ?? { passed: 0, limited: 0, rejected: 0 },
          })),
          rejected: fc.rejected,
        };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(body, null, 2)}\n`);
      },
      (e: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`policies: cannot read counters: ${e.message}\n`);
      },
    );
  };
}
