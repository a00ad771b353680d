// What a person does in the chat app, in the words of the page's labels.
// Written once against the person API (./person.mjs), so every engine runs
// the same steps.
import assert from 'node:assert/strict';

export const WAIT_MS = 15_000;

/** Opens the start page, picks a name and a room, and waits until joined. */
export async function joinFromHome(person, baseUrl, name, room) {
  await person.goto(`${baseUrl}/`);
  await person.fill('Your name', name);
  await person.fill('Room', room);
  await person.click('Join room');
  await waitJoined(person);
}

/** Opens a room link directly; answers the name prompt when it appears. */
export async function joinByLink(person, baseUrl, name, room) {
  await person.goto(`${baseUrl}/chat/${room}`);
  await person.fill('Your name', name);
  await person.click('Enter room');
  await waitJoined(person);
}

/** The room's subscription is confirmed by the server. */
export async function waitJoined(person) {
  await person.waitFor('main.chat[data-joined="true"]', { timeout: WAIT_MS });
}

/** The connection is up and the room subscribed (again). */
export async function waitLive(person) {
  await person.waitFor('.connection-status[data-state="live"]', { timeout: WAIT_MS });
  await waitJoined(person);
}

/** Types a message into the composer and sends it with Enter. */
export async function say(person, text) {
  await person.fill('Message', text);
  await person.press('Enter');
}

/** Waits for a message with exactly this text. */
export async function waitForMessage(person, text) {
  await person.waitFor('.message-list .message .text', { text, timeout: WAIT_MS });
}

export async function messageTexts(person) {
  return person.texts('.message-list .message .text');
}

/** Waits until `name` is listed under "Who's here". */
export async function waitForMember(person, name) {
  await person.waitFor('aside[aria-label="Who\'s here"] .member', { text: name, timeout: WAIT_MS });
}

export { assert };
