import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signed
 * content is `${id}.${timestamp}.${body}`, the key is the bytes the base64
 * after `whsec_` stands for, and the header value is `v1,` + the base64
 * HMAC-SHA256. The configuration has checked the secret's form.
 */
export function signWebhook(secret: string, id: string, timestampS: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const mac = createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64');
  return `v1,${mac}`;
}
