/** Defaults that the server, the agent and the CLI must agree on. */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8060;
export const DEFAULT_DATA_DIR = '.patchwarden';
/** The first admin token, written owner-only into the server's data directory. */
export const ADMIN_TOKEN_FILE = 'admin-token';
/** The first user's (`admin`) password, made on the first start, readable by the server's owner only. */
export const FIRST_PASSWORD_FILE = 'admin-password';
