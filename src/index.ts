/** regmirror as a library: build a config, create a mirror, listen. */
export { Mirror, type MirrorOptions } from './mirror.js';
export { buildConfig, readConfigFile, readEnv, type ConfigInput } from './config/load.js';
export { defaultConfig } from './config/defaults.js';
export type { MirrorConfig, UpstreamConfig, Credentials } from './config/types.js';
export { MirrorError, type ErrorKind } from './oci/errors.js';
export { RegistryError, ERROR_TABLE, toRegistryError, type ErrorCode } from './http/registry-errors.js';
