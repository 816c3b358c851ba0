/**
 * Escaping for every output format: report texts come from journals and configurations written
 * by other hosts and other people, so nothing is ever inserted unescaped.
 */

// Characters XML 1.0 cannot hold at all (even as references): control characters, lone surrogates, U+FFFE/F.
const XML_INVALID =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text for HTML or XML content and attribute values (quotes included); invalid characters become U+FFFD. */
export function escapeXml(text: string): string {
  return text
    .replace(XML_INVALID, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** HTML escaping is XML escaping (the report is served as HTML5, written as well-formed markup). */
export const escapeHtml = escapeXml;

/** Text for a Markdown table cell: one line, no table or inline syntax, no raw HTML. */
export function escapeMarkdown(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001F\u007F]+/g, ' ')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/([\\`*_[\]|~])/g, '\\$1')
  );
}

/** Text for a terminal: control characters (escape sequences from a hostile journal) removed. */
export function plainText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g, '?');
}
