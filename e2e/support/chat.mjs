// What a person does in the chat app, in the words of the page's labels.
import assert from 'node:assert/strict';

export const WAIT_MS = 15_000;

/** Opens the start page, picks a name and a room, and waits until joined. */
export async function joinFromHome(page, baseUrl, name, room) {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Room').fill(room);
  await page.getByRole('button', { name: 'Join room' }).click();
  await waitJoined(page);
}

/** Opens a room link directly; answers the name prompt when it appears. */
export async function joinByLink(page, baseUrl, name, room) {
  await page.goto(`${baseUrl}/chat/${room}`);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Enter room' }).click();
  await waitJoined(page);
}

/** The room's subscription is confirmed by the server. */
export async function waitJoined(page) {
  await page.locator('main.chat[data-joined="true"]').waitFor({ timeout: WAIT_MS });
}

export async function say(page, text) {
  const composer = page.getByRole('textbox', { name: 'Message', exact: true });
  await composer.fill(text);
  await composer.press('Enter');
}

/** Waits for a message with exactly this text. */
export async function waitForMessage(page, text) {
  await page
    .locator('.message-list .message .text', { hasText: text })
    .filter({ hasText: new RegExp(`^${escapeRegExp(text)}$`) })
    .first()
    .waitFor({ timeout: WAIT_MS });
}

export async function messageTexts(page) {
  return page.locator('.message-list .message .text').allTextContents();
}

export async function waitForMember(page, name) {
  await page
    .getByRole('complementary', { name: "Who's here" })
    .getByText(name, { exact: true })
    .waitFor({ timeout: WAIT_MS });
}

export function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export { assert };
