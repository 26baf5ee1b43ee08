/**
 * Text from another process (a master's status or error, which a local user
 * may have faked) is printed with every control character escaped: C0, DEL,
 * C1 (0x9b is a CSI on many terminals) and the Unicode line and bidi
 * controls. No escape sequence reaches the terminal, no value spans lines.
 * The escapes are JSON's (\u001b), so JSON output stays valid JSON.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function safeText(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Each line of a text we built, escaped; the newlines between them kept. */
export function safeLines(s: string): string {
  return s.split('\n').map(safeText).join('\n');
}
