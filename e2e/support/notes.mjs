// What a person does in the notes app, in the words of the page's labels.
// Written once against the person API (./person.mjs), so every engine runs
// the same steps.
import assert from 'node:assert/strict';

export const WAIT_MS = 15_000;

/** Opens the notes list, answering the name prompt, and waits for the list. */
export async function openList(person, baseUrl, name) {
  await person.goto(`${baseUrl}/notes`);
  await person.fill('Your name', name);
  await person.click('Open notes');
  await waitListLoaded(person);
}

export async function waitListLoaded(person) {
  await person.waitFor('main.notes[data-loaded="true"]', { timeout: WAIT_MS });
}

/** Creates a note from the list page; returns its id once its editor is open. */
export async function createNote(person, title) {
  await person.fill('New note title', title);
  await person.click('Create note');
  await waitEditorLoaded(person);
  const path = new URL(await person.url()).pathname;
  const match = /^\/notes\/([A-Za-z0-9_-]+)$/.exec(path);
  assert.ok(match, `the editor opened at ${path}`);
  return match[1];
}

/** Opens a note by its link, answering the name prompt. */
export async function openNote(person, baseUrl, name, id) {
  await person.goto(`${baseUrl}/notes/${id}`);
  await person.fill('Your name', name);
  await person.click('Open note');
  await waitEditorLoaded(person);
}

export async function waitEditorLoaded(person) {
  await person.waitFor('main.note[data-loaded="true"]', { timeout: WAIT_MS });
}

/** The titles in the list, top to bottom. */
export async function listedTitles(person) {
  return (await person.texts('.note-list .note-link')).map((text) => text.trim());
}

export async function waitForTitles(person, titles) {
  await person.waitUntil((expected) => JSON.stringify(
    [...document.querySelectorAll('.note-list .note-link')].map((link) => link.textContent.trim()),
  ) === expected, { args: [JSON.stringify(titles)], timeout: WAIT_MS, what: `the list to read ${titles.join(', ')}` });
}

/** The note's text as the editor shows it. */
export async function body(person) {
  return person.evaluate("document.getElementById('note-body').value");
}

/** Puts the caret at `offset` in the body (`-1`: the end) and focuses it. */
export async function placeCaret(person, offset) {
  await person.evaluate((at) => {
    const area = document.getElementById('note-body');
    area.focus();
    const position = at < 0 ? area.value.length : at;
    area.setSelectionRange(position, position);
    area.dispatchEvent(new Event('select'));
  }, offset);
}

/** Waits until the body reads exactly `text`. */
export async function waitForBody(person, text) {
  await person.waitUntil((expected) => document.getElementById('note-body').value === expected,
    { args: [text], timeout: WAIT_MS, what: `the note to read ${JSON.stringify(text)}` });
}

/** Waits until every edit made here is stored on the server. */
export async function waitSaved(person) {
  await person.waitFor('.save-state[data-state="saved"]', { timeout: WAIT_MS });
}

/** Waits until `name` is listed among the editors here. */
export async function waitForPeer(person, name) {
  await person.waitFor('.peer-list .peer', { text: name, timeout: WAIT_MS });
}

export { assert };
