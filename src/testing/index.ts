/**
 * `mailwire/testing`: a scriptable SMTP/LMTP server on loopback for tests, demos and
 * benchmarks (Postfix smtp-sink in spirit). It can announce or hide each extension, accept or
 * reject each recipient, inject a fault at any protocol step, and records what it received.
 *
 * @packageDocumentation
 */
export { TestServer } from './test-server.js';
export type { TestServerOptions, ExtensionOptions, ScriptContext, AuthAttempt } from './options.js';
export type { Fault, FaultAction, Step } from './faults.js';
export { DEFAULT_GARBAGE } from './faults.js';
export type { ReceivedTransaction, ReceivedRecipient, ServerSessionRecord } from './recorded.js';
export { SERVER_MECHANISMS } from './sasl-server.js';
export { testCertificate } from './test-certificate.js';
