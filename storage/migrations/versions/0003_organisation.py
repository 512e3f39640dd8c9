"""organisation: units, delegations, groups, account profiles, audit log

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-23

Its own branch ("org"): `mailserver db upgrade` runs every head.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = ('org',)
depends_on = None


def upgrade() -> None:
    op.create_table('org_units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('head_account_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['org_units.id'], name=op.f('fk_org_units_parent_id_org_units'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_org_units_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['head_account_id'], ['accounts.id'], name=op.f('fk_org_units_head_account_id_accounts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_units')),
    sa.UniqueConstraint('code', name=op.f('uq_org_units_code')),
    sa.UniqueConstraint('account_id', name=op.f('uq_org_units_account_id')),
    )
    op.create_index(op.f('ix_org_units_parent_id'), 'org_units', ['parent_id'])
    op.create_index(op.f('ix_org_units_head_account_id'), 'org_units', ['head_account_id'])

    op.create_table('org_delegations',
    sa.Column('unit_account_id', sa.Integer(), nullable=False),
    sa.Column('delegate_account_id', sa.Integer(), nullable=False),
    sa.Column('rights', sa.String(length=64), nullable=False),
    sa.Column('granted_by', sa.Integer(), nullable=True),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['unit_account_id'], ['accounts.id'], name=op.f('fk_org_delegations_unit_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['delegate_account_id'], ['accounts.id'], name=op.f('fk_org_delegations_delegate_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['granted_by'], ['accounts.id'], name=op.f('fk_org_delegations_granted_by_accounts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('unit_account_id', 'delegate_account_id', name=op.f('pk_org_delegations')),
    )
    op.create_index(op.f('ix_org_delegations_delegate_account_id'), 'org_delegations', ['delegate_account_id'])

    op.create_table('org_groups',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('send_policy', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_org_groups_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_org_groups')),
    )

    op.create_table('org_group_members',
    sa.Column('group_account_id', sa.Integer(), nullable=False),
    sa.Column('member_account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_account_id'], ['accounts.id'], name=op.f('fk_org_group_members_group_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_account_id'], ['accounts.id'], name=op.f('fk_org_group_members_member_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_account_id', 'member_account_id', name=op.f('pk_org_group_members')),
    )
    op.create_index(op.f('ix_org_group_members_member_account_id'), 'org_group_members', ['member_account_id'])

    op.create_table('account_profile',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=False),
    sa.Column('person_key', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_profile_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_account_profile_unit_id_org_units'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_account_profile')),
    )
    op.create_index(op.f('ix_account_profile_unit_id'), 'account_profile', ['unit_id'])
    op.create_index(op.f('ix_account_profile_person_key'), 'account_profile', ['person_key'])

    op.create_table('org_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor_account_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('mailbox_account_id', sa.Integer(), nullable=True),
    sa.Column('mailbox', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_audit')),
    )
    op.create_index('ix_org_audit_mailbox_at', 'org_audit', ['mailbox_account_id', 'at'])


def downgrade() -> None:
    op.drop_table('org_audit')
    op.drop_table('account_profile')
    op.drop_table('org_group_members')
    op.drop_table('org_groups')
    op.drop_table('org_delegations')
    op.drop_table('org_units')
