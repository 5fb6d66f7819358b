/**
 * How every browser test here launches Debian's Chromium (no browser download
 * is possible on these machines). Without the background-networking flags
 * Chromium keeps trying to reach Google's hosts, which this closed network refuses.
 */
export const chromiumPath = '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox', // tests run as root
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
