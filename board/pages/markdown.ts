import MarkdownIt from 'markdown-it';
import { Safe } from './html.js';

/**
 * Markdown (a run report) as HTML. markdown-it with `html: false` escapes
 * any markup the text carries (an error message, a target's notes) instead
 * of passing it through, and its link check refuses javascript:, vbscript:,
 * file: and data: links, so the result is safe to put in a page as it is.
 */
const renderer = new MarkdownIt({ html: false, linkify: false, typographer: false });

export function markdownToHtml(markdown: string): Safe {
  return new Safe(renderer.render(markdown));
}
