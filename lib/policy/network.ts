/**
 * The client's IP address for the direction test, parsed with the shared parser of util/ip-network
 * (IPv4-mapped IPv6 taken as IPv4, as internal_networks are). Imports message and util only.
 */
import type { CapturedMessage } from '../message';
import { parseIp, type IpAddress } from '../util/ip-network';

/** The client IP the MTA reported, parsed; undefined when unknown or not an IP address. */
export function clientIp(msg: Pick<CapturedMessage, 'clientIp'>): { text: string; ip: IpAddress } | undefined {
  const text = msg.clientIp;
  if (text === undefined || text === '') return undefined;
  const ip = parseIp(text);
  return ip ? { text, ip } : undefined;
}
