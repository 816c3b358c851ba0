import { createInterface } from 'node:readline';

/** Ask for a password on the terminal without echoing it. Only used when stdin is a TTY. */
export function promptPassword(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const rlOutput = rl as unknown as { _writeToOutput: (s: string) => void };
    let asked = false;
    rlOutput._writeToOutput = (s: string) => {
      // Print the question once, then nothing for the typed characters.
      if (!asked) process.stderr.write(s);
      asked = true;
    };
    rl.question(question, (answer) => {
      process.stderr.write('\n');
      rl.close();
      resolve(answer);
    });
    rl.on('SIGINT', () => {
      rl.close();
      reject(new Error('password prompt interrupted'));
    });
  });
}
