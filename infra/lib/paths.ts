import * as path from 'path';

/** The repository root: infra/ sits directly below it. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** The data files the stack is built from, all reviewed like code. */
export const SCHEMA_FILE = path.join(REPO_ROOT, 'schema', 'table.json');
export const DASHBOARDS_DIR = path.join(REPO_ROOT, 'dashboards');
export const ALARMS_DIR = path.join(REPO_ROOT, 'alarms');
export const RUNBOOKS_DIR = path.join(REPO_ROOT, 'docs', 'runbooks');

/** Where `cargo lambda build --release --arm64 --output-format zip` leaves the zips. */
export const DEFAULT_LAMBDA_ASSETS = path.join(REPO_ROOT, 'target', 'lambda');
