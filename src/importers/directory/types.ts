/** One row of the people-and-teams feed (`type,id,name,email,team,manager,status,left_at`). */
export interface DirectoryRow {
  file: string;
  line: number;
  type: 'person' | 'team';
  id: string;
  name?: string;
  email?: string;
  /** Team id (for a person: the team they belong to; for a team: its parent team). */
  team?: string;
  /** Manager: a person id or email. */
  manager?: string;
  status: 'active' | 'departed';
  /** ISO-8601 UTC; required when status is departed. */
  leftAt?: string;
}

export interface DirectoryParseResult {
  rows: DirectoryRow[];
  file: { path: string; sha256: string };
}
