// Words and numbers in the page's language: the built-in translations, the
// nearest `lang` winning and followed as it changes, English fallbacks
// marked, single terms overridden, and axe in every language.
import './index.js';
import type { JobStatus } from '../shared/protocol.js';
import { announcer } from './announcer.js';
import type { BackjobLauncher } from './backjob-launcher.js';
import type { BackjobProgress } from './backjob-progress.js';
import { registerTranslation } from './localize.js';
import { FakeConnection } from './testing/fake-connection.js';
import { cleanup, equal, expectAccessible, mount, ok, waitFor } from './testing/helpers.js';
import { recordSpeech } from './testing/speech.js';
import { de } from './translations/de.js';
import { en } from './translations/en.js';
import { es } from './translations/es.js';
import { fr } from './translations/fr.js';

const part = (element: Element, name: string) => element.shadowRoot!.querySelector<HTMLElement>(`[part~="${name}"]`);
const bar = (element: Element) => element.shadowRoot!.querySelector<HTMLElement>('[role="progressbar"]')!;
const text = (element: Element | null | undefined) => element?.textContent?.replace(/[ \t\n\r]+/g, ' ').trim();

async function progressIn(connection: FakeConnection, jobId: string, attributes: Record<string, string | boolean> = {}, parent: Element = document.body) {
  const element = document.createElement('backjob-progress');
  element.jobId = jobId;
  element.connection = connection;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value === true ? '' : String(value));
  parent.append(element);
  await element.updateComplete;
  return element;
}

describe('localization', () => {
  afterEach(() => {
    cleanup();
    document.documentElement.lang = 'en';
  });

  for (const translation of [en, de, fr, es]) {
    const code = translation.$code;
    it(`speaks ${translation.$name} on a page in ${code}: words, percentages and times through Intl, and passes axe`, async () => {
      document.documentElement.lang = code;
      const connection = new FakeConnection();
      const startedAt = Date.now() - 10_000;
      connection.snapshot('run', { name: 'export', status: 'running', progress: 42, startedAt });
      connection.snapshot('idle', { name: 'export', status: 'running', progress: null, startedAt });
      connection.snapshot('done', { name: 'export', status: 'completed', progress: 100, startedAt, endedAt: startedAt + 8_000 });
      connection.snapshot('failed', { name: 'export', status: 'failed', progress: 30, error: 'stalled', errorCode: 'BACKJOB_ERR_STALLED', startedAt, endedAt: startedAt + 8_000 });
      const running = await progressIn(connection, 'run', { cancelable: true });
      const percent = new Intl.NumberFormat(code, { style: 'percent' }).format(0.42);
      equal(text(part(running, 'status')), percent, 'the percentage as the language writes it');
      equal(bar(running).getAttribute('aria-valuetext'), percent);
      equal(text(part(running, 'button')), translation.cancel);
      const time = text(part(running, 'time'))!;
      ok(time.startsWith(translation.elapsed('').trim()), `elapsed in ${code}: ${time}`);
      ok(time.includes(translation.timeLeft('').trim().split(' ')[0]!), `time left in ${code}: ${time}`);
      ok(!running.shadowRoot!.querySelector('[lang]'), 'nothing marked as another language');
      equal(text(part(await progressIn(connection, 'idle'), 'status')), translation.running);
      equal(text(part(await progressIn(connection, 'done'), 'status')), translation.completed);
      const failed = await progressIn(connection, 'failed');
      equal(text(part(failed, 'status')), translation.failed);
      equal(text(part(failed, 'error')), translation.errors.BACKJOB_ERR_STALLED, "a server's known reason, in the page's language");
      equal(text(part(await progressIn(connection, ''), 'status')), translation.noJob);
      connection.snapshot('wait', { name: 'export', status: 'waiting' });
      connection.snapshot('stopped', { name: 'export', status: 'canceled', progress: 20, error: 'canceled', startedAt, endedAt: startedAt + 1_000 });
      equal(text(part(await progressIn(connection, 'wait', { cancelable: true }), 'status')), translation.waiting);
      equal(text(part(await progressIn(connection, 'stopped'), 'status')), translation.canceled);
      const offline = new FakeConnection();
      offline.snapshot('run', { name: 'export', status: 'running', progress: 42, startedAt });
      const reconnecting = await progressIn(offline, 'run');
      offline.setState('reconnecting');
      await reconnecting.updateComplete;
      equal(text(part(reconnecting, 'status')), translation.reconnecting);
      const refused = new FakeConnection();
      refused.refuse('gone', 'BACKJOB_ERR_NOT_FOUND', 'No such job, or not yours to watch');
      equal(text(part(await progressIn(refused, 'gone'), 'error')), translation.errors.BACKJOB_ERR_NOT_FOUND);

      const log = await mount('backjob-log', { 'job-id': 'run' }, { connection });
      equal(text(part(log, 'empty')), translation.noOutputYet);
      equal(part(log, 'base')!.getAttribute('aria-label'), translation.logOf('Export'));
      const launcher = (await mount('backjob-launcher', { name: 'count', 'show-log': true, cancelable: true }, { connection })) as BackjobLauncher;
      equal(text(launcher.shadowRoot!.querySelector('slot')), translation.start, 'the default button label');
      await expectAccessible(launcher);
      // Running, in its card with the log: every state above, and the launcher's, pass axe in this language.
      launcher.jobId = 'run';
      launcher.merged = true;
      await launcher.updateComplete;
      equal(text(part(launcher, 'note')), translation.joined);
      for (const element of document.body.children) await expectAccessible(element);
    });
  }

  for (const translation of [de, fr, es]) {
    it(`has every term English has in ${translation.$name}, and tells a job's steps and children in it`, async () => {
      const missing = Object.keys(en).filter((key) => !(key in translation));
      equal(missing, [], `terms ${translation.$code} lacks`);
      equal(Object.keys(en.errors).filter((code) => !(code in translation.errors)), [], `error codes ${translation.$code} lacks`);
      const code = translation.$code;
      document.documentElement.lang = code;
      const connection = new FakeConnection();
      const child = (id: string, status: JobStatus) => ({ id, name: 'part', title: `Part ${id}`, weight: 1, status, progress: status === 'completed' ? 100 : 0 });
      connection.apply(
        'family',
        { type: 'job:start', attempt: 1 },
        { type: 'job:steps', steps: [{ name: 'a', title: 'Download' }, { name: 'b', title: 'Transform' }, { name: 'c', title: 'Upload' }] },
        { type: 'job:step', name: 'a', state: 'skipped' },
        { type: 'job:step', name: 'b' },
        ...['1', '2', '3', '4', '5'].map((id, i) => ({ type: 'job:child' as const, child: child(id, i < 2 ? 'completed' : i === 2 ? 'failed' : 'running') })),
      );
      const element = await progressIn(connection, 'family', { 'show-steps': true, 'show-children': true, 'children-limit': '4', label: 'Export' });
      const n = (value: number) => new Intl.NumberFormat(code).format(value);
      equal(text(part(element, 'step-summary')), translation.stepOf!(n(2), n(3), 'Transform'));
      equal(text(part(element, 'children-summary')), `${translation.childrenDone!(3, 5, n(3), n(5))} · ${translation.childrenFailed!(1, n(1))}`);
      equal(part(element, 'steps')!.getAttribute('aria-label'), translation.stepsOf!('Export'));
      equal(part(element, 'children')!.getAttribute('aria-label'), translation.childJobsOf!('Export'));
      equal(text(element.shadowRoot!.querySelector('[part~="step-skipped"] [part="step-status"]')), translation.skipped);
      equal(text(part(element, 'children-toggle')), translation.showAll!(5, n(5)));
      ok(!element.shadowRoot!.querySelector('[lang]'), 'nothing fell back to English');
      await expectAccessible(element);
      for (const [name, args] of Object.entries({ failedAtStep: ['2', '3', 'X'], batchJobsOf: ['X'], announceStepDone: ['X'], announceStepFailed: ['X'], announceChildFailed: ['X'], announceChildrenFailed: ['X', 2, '2'], batchMember: ['2', 'Y'] })) {
        const said = (translation[name as keyof typeof translation] as (...a: unknown[]) => string)(...args);
        ok(said && said !== (en[name as keyof typeof en] as (...a: unknown[]) => string)(...args), `${name} is translated: ${said}`);
      }
      for (const name of ['showFewer', 'batchOrSingle', 'batchNotList'] as const) ok(translation[name] && translation[name] !== en[name], `${name} is translated`);
    });
  }

  it('agrees counted words with their number in every language (French 0 and 1 singular, Spanish 1 only)', () => {
    equal(fr.childrenDone!(1, 40, '1', '40'), '1 sur 40 terminée');
    equal(fr.childrenDone!(0, 40, '0', '40'), '0 sur 40 terminée');
    equal(fr.childrenDone!(3, 40, '3', '40'), '3 sur 40 terminées');
    equal(es.childrenDone!(1, 40, '1', '40'), '1 de 40 terminada');
    equal(es.childrenDone!(0, 40, '0', '40'), '0 de 40 terminadas');
    equal(es.childrenFailed!(1, '1'), '1 fallida');
    equal(es.childrenFailed!(2, '2'), '2 fallidas');
    equal(en.announceChildrenFailed('Export', 1, '1'), '1 job of Export failed');
    equal(en.announceChildrenFailed('Export', 1200, '1,200'), '1,200 jobs of Export failed');
    equal(de.announceChildrenFailed('Export', 1, '1'), '1 Auftrag von Export fehlgeschlagen');
    equal(de.announceChildrenFailed('Export', 2, '2'), '2 Aufträge von Export fehlgeschlagen');
    equal(fr.announceChildrenFailed!('Export', 2, '2'), '2 tâches de Export ont échoué');
    equal(es.announceChildrenFailed!('Export', 2, '2'), 'Fallaron 2 tareas de Export');
  });

  it('follows the nearest lang: the element, then its ancestors (across shadow roots), then the document, as they change', async () => {
    document.documentElement.lang = 'en';
    const connection = new FakeConnection();
    connection.snapshot('job1', { name: 'export', status: 'waiting' });
    const section = document.createElement('section');
    section.lang = 'de';
    document.body.append(section);
    const element = await progressIn(connection, 'job1', {}, section);
    equal(text(part(element, 'status')), 'Wartet', "the ancestor's language");
    section.lang = 'fr';
    await waitFor(() => text(part(element, 'status')) === 'En attente', 'French once the section changes language');
    element.lang = 'es';
    await waitFor(() => text(part(element, 'status')) === 'En espera', "the element's own lang wins");
    element.removeAttribute('lang');
    section.removeAttribute('lang');
    document.documentElement.lang = 'de';
    await waitFor(() => text(part(element, 'status')) === 'Wartet', "the document's language");
    // Inside a launcher's shadow root, the launcher's lang reaches the progress view.
    document.documentElement.lang = 'en';
    const launcher = (await mount('backjob-launcher', { name: 'count', lang: 'es' }, { connection })) as BackjobLauncher;
    launcher.jobId = 'job1';
    await launcher.updateComplete;
    const inner = launcher.shadowRoot!.querySelector('backjob-progress') as BackjobProgress;
    await inner.updateComplete;
    equal(text(part(inner, 'status')), 'En espera');
  });

  it("follows a lang that changes inside an app's own shadow root (a framework shell)", async () => {
    document.documentElement.lang = 'en';
    const shell = document.createElement('div');
    document.body.append(shell);
    const root = shell.attachShadow({ mode: 'open' });
    const region = document.createElement('div');
    region.lang = 'de';
    root.append(region);
    const connection = new FakeConnection();
    const list = document.createElement('backjob-jobs');
    list.connection = connection;
    region.append(list);
    await waitFor(() => connection.pageRequests.length, 'the first page');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await list.updateComplete;
    equal(text(part(list, 'title')), 'Ihre Aufträge', "the shadow root's language");
    region.lang = 'fr';
    await waitFor(() => text(part(list, 'title')) === 'Vos tâches', 'French once the region inside the shell changes language', 1_000);
  });

  it('marks English fallbacks lang="en" on a page in a language it has no words for, and formats numbers in that language', async () => {
    document.documentElement.lang = 'ar-EG';
    const connection = new FakeConnection();
    connection.snapshot('job1', { name: 'export', status: 'running', progress: 42, startedAt: Date.now() - 5_000 });
    const element = await progressIn(connection, 'job1', { cancelable: true });
    const button = part(element, 'button')!;
    equal(button.querySelector('[lang]')?.getAttribute('lang'), 'en', 'the English "Cancel" is marked');
    equal(text(part(element, 'status')), new Intl.NumberFormat('ar-EG', { style: 'percent' }).format(0.42), 'the number is in Arabic');
    ok(!part(element, 'status')!.querySelector('[lang]'), 'a number formatted in the page language is not marked');
    equal(part(element, 'time')!.querySelector('[lang]')?.getAttribute('lang'), 'en');
    ok(/^Elapsed 00:0\d · about \d+ seconds left$/.test(text(part(element, 'time'))!), `an English sentence has English values: ${text(part(element, 'time'))}`);
    ok(!button.querySelector('[dir]'), 'a left-to-right page needs no direction on it');
    await expectAccessible(element);
    // Right to left, an English fallback keeps its own direction: "Cancel…" does not become "…Cancel".
    document.documentElement.dir = 'rtl';
    try {
      await waitFor(() => button.querySelector('[lang="en"]')?.getAttribute('dir') === 'ltr', 'the fallback marked dir="ltr"');
    } finally {
      document.documentElement.removeAttribute('dir');
    }
  });

  it('lets a page add a language with a few terms (the rest English, marked) and override a single term', async () => {
    registerTranslation({ $code: 'pt', $name: 'Português', cancel: 'Cancelar', waiting: 'Aguardando' });
    try {
      document.documentElement.lang = 'pt-BR';
      const connection = new FakeConnection();
      connection.snapshot('job1', { name: 'export', status: 'waiting' });
      const element = await progressIn(connection, 'job1', { cancelable: true });
      equal(text(part(element, 'status')), 'Aguardando', 'pt-BR takes the pt translation');
      equal(text(part(element, 'button')), 'Cancelar');
      ok(!part(element, 'button')!.querySelector('[lang]'), 'its own term is not marked');
      connection.snapshot('job1', { status: 'running', progress: null });
      await element.updateComplete;
      equal(part(element, 'status')!.querySelector('[lang]')?.getAttribute('lang'), 'en', 'a missing term falls back to English, marked');
      // Overriding one English term re-renders every element.
      document.documentElement.lang = 'en';
      registerTranslation({ $code: 'en', cancel: 'Stop' });
      await waitFor(() => text(part(element, 'button')) === 'Stop', 'the overridden term');
      equal(text(part(element, 'status')), 'Running', 'the other terms are kept');
    } finally {
      registerTranslation({ $code: 'en', cancel: en.cancel });
    }
  });

  it('announces in the language of the element, marked for the reader', async () => {
    announcer.clear();
    const speech = recordSpeech();
    try {
      const connection = new FakeConnection();
      connection.snapshot('job1', { name: 'export', title: 'Export', status: 'running', progress: 0 });
      const element = await progressIn(connection, 'job1', { lang: 'de' });
      connection.snapshot('job1', { progress: 30 });
      await element.updateComplete;
      await waitFor(() => speech.heard.length === 1, 'the milestone');
      equal(speech.heard[0]!.text, `Export: ${new Intl.NumberFormat('de', { style: 'percent' }).format(0.3)}`);
      equal(announcer.element!.querySelector('span')!.lang, 'de');
      connection.snapshot('job1', { status: 'completed', progress: 100 });
      await element.updateComplete;
      await waitFor(() => speech.heard.length === 2, 'the end');
      equal(speech.heard[1]!.text, 'Export: abgeschlossen');
    } finally {
      speech.stop();
      announcer.clear();
    }
  });
});
