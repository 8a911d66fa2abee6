/** pino JSON logging. Request loggers are children carrying the request id. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Creates the root logger. Credentials are redacted wherever they might appear. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'regmirror' },
      redact: { paths: ['*.authorization', '*.password', '*.token', 'headers.authorization', 'req.headers.authorization', 'credentials'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
