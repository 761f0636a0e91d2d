import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (installed by .ci/run); never a downloaded browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface PageCheck {
  page: Page;
  consoleErrors: string[];
  requests: string[];
}

/** Open a local file, recording console errors, page errors and every request the page makes. */
export async function openFile(browser: Browser, path: string): Promise<PageCheck> {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  const consoleErrors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${path}`, { waitUntil: 'load' });
  return { page, consoleErrors, requests };
}

/** Per chart: its title and how many painted pixels its canvases (or shapes its SVG) hold. */
export async function chartInk(page: Page): Promise<{ title: string; ink: number }[]> {
  return page.$$eval('[data-chart]', (nodes) =>
    nodes.map((n) => {
      const title = n.getAttribute('data-chart') ?? '';
      if (n instanceof SVGElement) return { title, ink: n.querySelectorAll('rect,path,line,circle').length };
      let ink = 0;
      for (const c of Array.from(n.querySelectorAll('canvas'))) {
        const ctx = c.getContext('2d');
        if (!ctx || c.width === 0 || c.height === 0) continue;
        const px = ctx.getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) ink++;
      }
      return { title, ink };
    }),
  );
}

export function artifactDir(): string {
  const dir = new URL('../../test-artifacts/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  return dir;
}
