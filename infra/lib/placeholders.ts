/**
 * `${Name}` placeholders in the dashboard and alarm files, replaced at synth time with
 * the stack's own names (tokens that CloudFormation resolves). A placeholder the stack
 * does not define fails the synth: a typo never reaches a dashboard.
 *
 * A name whose value is `undefined` is one the stack defines for a part this deployment
 * leaves out (the shared cache when `sharedCache` is off): the alarms and dashboard widgets
 * that use it are left out with it (`usesAbsent`), and substituting it fails.
 */
const PLACEHOLDER = /\$\{([^}]*)\}/g;

export class Placeholders {
  constructor(private readonly values: Readonly<Record<string, string | undefined>>) {}

  /** The names with a value in this deployment. */
  get names(): string[] {
    return Object.keys(this.values).filter((name) => this.values[name] !== undefined);
  }

  /** The names the stack defines for parts this deployment leaves out. */
  get absent(): string[] {
    return Object.keys(this.values).filter((name) => this.values[name] === undefined);
  }

  /** Whether a data file's value (text or parsed JSON) uses a name of a part left out. */
  usesAbsent(value: unknown): boolean {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return Placeholders.used(text).some((name) => this.absent.includes(name));
  }

  /** The placeholder names a text uses. */
  static used(text: string): string[] {
    return [...text.matchAll(PLACEHOLDER)].map((match) => match[1]);
  }

  /** `text` with every placeholder replaced, in one pass (a value is never scanned again). */
  substitute(text: string, where: string): string {
    return text.replace(PLACEHOLDER, (_whole, name: string) => {
      if (!Object.hasOwn(this.values, name)) {
        throw new Error(`${where}: unknown placeholder \${${name}} (defined: ${Object.keys(this.values).sort().join(', ')})`);
      }
      const value = this.values[name];
      if (value === undefined) {
        throw new Error(`${where}: \${${name}} names a part this deployment leaves out`);
      }
      return value;
    });
  }

  /** A parsed JSON value with every string's placeholders replaced. */
  substituteJson<T>(value: T, where: string): T {
    if (typeof value === 'string') {
      return this.substitute(value, where) as T;
    }
    if (Array.isArray(value)) {
      return value.map((item) => this.substituteJson(item, where)) as T;
    }
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([key, item]) => [
          this.substitute(key, where),
          this.substituteJson(item, where),
        ]),
      ) as T;
    }
    return value;
  }
}
