/**
 * `${Name}` placeholders in the dashboard and alarm files, replaced at synth time with
 * the stack's own names (tokens that CloudFormation resolves). A placeholder the stack
 * does not define fails the synth: a typo never reaches a dashboard.
 */
const PLACEHOLDER = /\$\{([^}]*)\}/g;

export class Placeholders {
  constructor(private readonly values: Readonly<Record<string, string>>) {}

  get names(): string[] {
    return Object.keys(this.values);
  }

  /** The placeholder names a text uses. */
  static used(text: string): string[] {
    return [...text.matchAll(PLACEHOLDER)].map((match) => match[1]);
  }

  /** `text` with every placeholder replaced, in one pass (a value is never scanned again). */
  substitute(text: string, where: string): string {
    return text.replace(PLACEHOLDER, (_whole, name: string) => {
      const value = this.values[name];
      if (value === undefined) {
        throw new Error(`${where}: unknown placeholder \${${name}} (defined: ${this.names.sort().join(', ')})`);
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
