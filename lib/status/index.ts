/**
 * The operations surface: message tracking, Prometheus metrics, the loopback status endpoint and
 * what the CLI's status/track commands use. Imports only util; app.ts feeds it.
 */
export * from './tracker';
export * from './metrics';
export * from './listen';
export * from './status-json';
export * from './server';
export * from './client';
export * from './format';
export * from './commands';
export * from './mail-log';
export * from './tophosts';
