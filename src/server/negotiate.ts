/**
 * Content negotiation: JSON by default, XML when Accept asks for application/xml or text/xml,
 * text/plain for simple results. XML is built with fast-xml-parser's builder.
 */
import type { Request, Response } from 'express';
import { XMLBuilder } from 'fast-xml-parser';

export type Format = 'json' | 'xml';

export function wantsXml(req: Request): boolean {
  // no Accept, */* or a JSON preference → JSON; XML only when asked for
  const best = req.accepts(['application/json', 'application/xml', 'text/xml']);
  return best === 'application/xml' || best === 'text/xml';
}

export function formatOf(req: Request): Format {
  return wantsXml(req) ? 'xml' : 'json';
}

const builder = new XMLBuilder({ ignoreAttributes: true, format: true, suppressEmptyNode: true, indentBy: '  ' });

/** JSON-ready value: Dates as ISO strings, everything else as is. */
export function toPlain(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

/** XML-ready value: like toPlain, with null as an empty element. */
function toXmlValue(value: unknown): unknown {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toXmlValue);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toXmlValue(v)]));
  }
  return value;
}

export function xmlDocument(root: string, body: unknown): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n${builder.build({ [root]: toXmlValue(body) })}`;
}

/** An XML fragment (no declaration) for streamed lists. */
export function xmlFragment(root: string, body: unknown): string {
  return builder.build({ [root]: toXmlValue(body) });
}

/** Sends a complex result in the negotiated format; `root` names the XML root element. */
export function send(req: Request, res: Response, status: number, root: string, body: unknown): void {
  res.status(status);
  if (wantsXml(req)) {
    res.type('application/xml; charset=utf-8').send(xmlDocument(root, body));
  } else {
    res.json(toPlain(body));
  }
}
