// The API token, when sosync has one: asked once, kept for this browser tab only (sessionStorage),
// sent as a Bearer header on fetches and as the first WebSocket message — never in a URL.
const KEY = 'sosync.api_token';
/** close code of the inspection socket for a missing or wrong token */
export const UNAUTHORIZED_CLOSE = 4401;

export function authHeaders() {
  const token = sessionStorage.getItem(KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Sends the token (if one is kept) as the socket's first message. */
export function sendToken(socket) {
  const token = sessionStorage.getItem(KEY);
  if (token) socket.send(JSON.stringify({ token }));
}

/** Asks for the token; false when the user gives none. */
export function askToken(why) {
  const answer = window.prompt(`${why}\nEnter sosync's API token (kept for this tab only):`);
  if (!answer || !answer.trim()) {
    sessionStorage.removeItem(KEY);
    return false;
  }
  sessionStorage.setItem(KEY, answer.trim());
  return true;
}
