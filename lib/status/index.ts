/**
 * The operations surface: message tracking, Prometheus metrics, readiness, the loopback status
 * endpoint with its page, the metrics listener and what the CLI's status/track commands use.
 * Imports only util; app.ts feeds it.
 */
export * from './tracker';
export * from './metrics';
export * from './listen';
export * from './status-json';
export * from './server';
export * from './metrics-server';
export * from './health';
export * from './rates';
export * from './page';
export * from './client';
export * from './format';
export * from './commands';
export * from './mail-log';
export * from './tophosts';
