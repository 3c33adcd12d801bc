// Drive the console in headless Chromium (the system's, never a downloaded one).
//   node console-check.mjs URL SCREENSHOT [CHROMIUM]
// 1. Opens the page and waits until it is connected to the broker; prints "READY".
// 2. Waits for a line on stdin (the test runs the seed scenario meanwhile).
// 3. Registers the page as a push endpoint for a new task on the sender, runs the task,
//    waits until the page has its notifications and their delivery states.
// 4. Prints what the page shows as one JSON line, and saves a screenshot.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const [url, screenshot, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('body[data-connected="true"]', { timeout: 20000 });
  console.log('READY');
  const taskId = await nextLine();
  await page.fill('#task-id', taskId);
  await page.click('#register');
  await page.waitForSelector('body[data-registered="true"]', { timeout: 15000 });
  await page.click('#run');
  // Nine notifications and the final one, each shown once.
  await page.waitForFunction(() => document.querySelectorAll('#mine li').length >= 10, null, { timeout: 30000 });
  const me = await page.inputValue('#my-address');
  // The sender's own word on this browser's deliveries (get_delivery_status, from the page).
  await page.waitForFunction((address) => [...document.querySelectorAll('#deliveries tbody tr')]
    .some((tr) => tr.cells[2].textContent === address && tr.cells[4].textContent.startsWith('delivered')),
  me, { timeout: 20000 });
  await page.waitForTimeout(300);
  const table = (id) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  const result = {
    me,
    agents: await table('agents'),
    tasks: await table('tasks'),
    deliveries: await table('deliveries'),
    mine: await page.$$eval('#mine li', (lis) => lis.map((li) => li.textContent)),
    stream: await page.$$eval('#stream li', (lis) => lis.map((li) => li.textContent)),
    status: await page.textContent('#endpoint-status'),
    problems,
  };
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(result));
} finally {
  lines.close();
  await browser.close();
}
