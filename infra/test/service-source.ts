import * as fs from 'fs';
import * as path from 'path';
import { REPO_ROOT } from '../lib/paths';

/** Every `.rs` file under a directory of the repository. */
function rustFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...rustFiles(full));
    else if (entry.name.endsWith('.rs')) found.push(full);
  }
  return found;
}

/** The `[[bin]]` names of backend/lambda: one per function. */
export function lambdaBinaries(): string[] {
  const cargo = fs.readFileSync(path.join(REPO_ROOT, 'backend', 'lambda', 'Cargo.toml'), 'utf8');
  return [...cargo.matchAll(/\[\[bin\]\]\s*name\s*=\s*"([a-z0-9-]+)"/g)].map((match) => match[1]);
}

/**
 * The environment variables the functions read (the clap `env =` settings and flags of the
 * service, and what backend/lambda reads itself), from their source.
 */
export function serviceSettings(): Set<string> {
  const settings = new Set<string>(['RUST_LOG']);
  for (const dir of [path.join('backend', 'service', 'src'), path.join('backend', 'lambda', 'src')]) {
    for (const file of rustFiles(path.join(REPO_ROOT, dir))) {
      for (const match of fs.readFileSync(file, 'utf8').matchAll(/"(BRAIN2_[A-Z0-9_]+)"/g)) {
        settings.add(match[1]);
      }
    }
  }
  return settings;
}

/**
 * The service's metrics (backend/service/src/telemetry/metric.rs): each name with the
 * labels it is recorded with. In Lambda every label becomes an EMF dimension next to
 * `Function`, so a CloudWatch metric of the service is named by exactly those dimensions.
 */
export function serviceMetrics(): Map<string, Set<string>> {
  const source = fs.readFileSync(path.join(REPO_ROOT, 'backend', 'service', 'src', 'telemetry', 'metric.rs'), 'utf8');
  const names = new Map<string, string>();
  for (const match of source.matchAll(/pub const ([A-Z_]+): &str = "([a-z0-9_]+)";/g)) {
    names.set(match[1], match[2]);
  }
  const metrics = new Map<string, Set<string>>();
  for (const match of source.matchAll(/\b(counter|gauge|histogram)!\(/g)) {
    // The macro's arguments, up to its balancing parenthesis.
    let depth = 1;
    let end = match.index! + match[0].length;
    while (depth > 0 && end < source.length) {
      if (source[end] === '(') depth += 1;
      if (source[end] === ')') depth -= 1;
      end += 1;
    }
    const args = source.slice(match.index! + match[0].length, end - 1);
    const constant = args.split(',')[0].trim();
    const name = names.get(constant);
    if (!name) continue;
    const labels = [...args.matchAll(/"([a-z_]+)"\s*=>/g)].map((label) => label[1]);
    const known = metrics.get(name) ?? new Set<string>();
    labels.forEach((label) => known.add(label));
    metrics.set(name, known);
  }
  return metrics;
}

/** The EMF dimensions of one of the service's metrics: `Function` and its labels. */
export function emfDimensions(metric: string): string[] | undefined {
  const labels = serviceMetrics().get(metric);
  return labels && ['Function', ...labels].sort();
}

/**
 * The routes of the router with their methods, full paths: from the OpenAPI document the
 * router generates (docs/openapi.json; a Rust unit test fails while it is stale).
 */
export function routerRoutes(): { path: string; methods: string[] }[] {
  const document = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'docs', 'openapi.json'), 'utf8'));
  return Object.entries(document.paths as Record<string, Record<string, unknown>>).map(([route, operations]) => ({
    path: route,
    methods: Object.keys(operations)
      .filter((key) => ['get', 'post', 'put', 'delete', 'patch'].includes(key))
      .map((method) => method.toUpperCase()),
  }));
}
