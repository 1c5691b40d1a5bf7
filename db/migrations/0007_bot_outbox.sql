-- Placeholder for the bot outbox migration of issue 16 (branch bot), so that 0008 applies on this branch alone: on merge, take the bot branch's file.
SELECT 1;
