/** A small MariaDB database exercising what a dump must carry faithfully. */
import { sql } from './myTestServer.js';

export const SAMPLE = `
  CREATE TABLE accounts (
    id INT AUTO_INCREMENT PRIMARY KEY,
    owner VARCHAR(100) NOT NULL,
    balance DECIMAL(12, 2) NOT NULL DEFAULT 0,
    created TIMESTAMP NOT NULL DEFAULT '2024-01-01 00:00:00',
    KEY owner_idx (owner)
  ) ENGINE=InnoDB;
  CREATE TABLE \`Weird \`\`Name\`\` ü;x\` (
    \`col "q"\` INT,
    data BLOB,
    vb VARBINARY(16),
    j JSON,
    f DOUBLE,
    fl FLOAT,
    d DATE,
    dt DATETIME(6),
    tm TIME,
    y YEAR,
    e ENUM('a', 'b'),
    s SET('x', 'y'),
    bits BIT(10),
    lat TEXT CHARACTER SET latin1,
    g POINT NULL
  ) ENGINE=InnoDB;
  CREATE TABLE items (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    account_id INT,
    v VARCHAR(50) UNIQUE,
    total BIGINT AS (account_id * 2) STORED,
    CONSTRAINT fk_acc FOREIGN KEY (account_id) REFERENCES accounts (id),
    CONSTRAINT chk_v CHECK (v <> '')
  ) ENGINE=InnoDB;
  CREATE TABLE nopk (a INT, b TEXT) ENGINE=InnoDB;
  CREATE VIEW rich AS SELECT id, owner FROM accounts WHERE balance > 100;
  CREATE SEQUENCE ticket_seq START WITH 100 INCREMENT BY 5;
  CREATE TRIGGER items_touch BEFORE INSERT ON items FOR EACH ROW SET NEW.v = IFNULL(NEW.v, CONCAT('auto-', NEW.account_id));
  CREATE FUNCTION f_double(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
  CREATE PROCEDURE p_count(OUT n INT) SELECT COUNT(*) INTO n FROM accounts;
  CREATE EVENT ev_noop ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1;

  INSERT INTO accounts (owner, balance) SELECT CONCAT('owner ', seq), seq * 10.5 FROM seq_1_to_500;
  INSERT INTO \`Weird \`\`Name\`\` ü;x\` VALUES
    (1, (SELECT UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') ORDER BY seq SEPARATOR '')) FROM seq_0_to_255), x'00ff00',
     '{"a": [1, 2, {"b": null}], "ü": "é"}', -0.0, 1.5, '2000-02-29', '2024-05-06 07:08:09.123456', '-838:59:59', 1999, 'b', 'x,y', b'1010101010',
     CONVERT('café' USING latin1), ST_GeomFromText('POINT(1 2)')),
    (2, NULL, NULL, NULL, 1e-300, NULL, NULL, NULL, NULL, NULL, NULL, '', b'0', NULL, NULL),
    (3, '', '', '[]', 1.7976931348623157e308, -3.4e38, '1000-01-01', '1000-01-01 00:00:00', '00:00:00', 2155, 'a', 'y', b'1111111111', 'N', NULL);
  INSERT INTO items (account_id, v) SELECT 1 + seq % 500, CONCAT('item ', seq) FROM seq_1_to_2000;
  INSERT INTO items (account_id) VALUES (7);
  INSERT INTO nopk VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, 'back\\\\slash'), (3, 'N');
  SELECT NEXTVAL(ticket_seq), NEXTVAL(ticket_seq);
`;

export async function populateSample(database: string): Promise<void> {
  await sql(database, SAMPLE);
}
