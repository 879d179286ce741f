/** The captured-message model shared by milter, policy and journal. */
export * from './captured-message';
