export async function runCommand(_args: string[]): Promise<number> { return 1; }
