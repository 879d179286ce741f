/** The daemon's version, shown by /status; a unit test keeps it equal to package.json's. */
export const VERSION = '0.2.0';
