<?php
// Drives MailUpSend, MailUpManage and MailUpReport with PHP's SoapClient in
// WSDL mode, as the MailUp PHP integrations do: LoginFromId on Send (SOAP 1.2),
// the key used on Manage and Report (SOAP 1.1), lists, groups, fields, a
// newsletter, the report of a sent one, logout. Prints one JSON object.
//
// usage: php soapclient_send.php BASE_URL USER PASSWORD CONSOLE_ID NEWSLETTER_ID
[$script, $base, $user, $password, $consoleId, $newsletter] = $argv;
$options = ['trace' => true, 'exceptions' => true, 'cache_wsdl' => WSDL_CACHE_NONE];
$send = new SoapClient("$base/MailupSend.asmx?WSDL", $options + ['soap_version' => SOAP_1_2]);
$manage = new SoapClient("$base/MailupManage.asmx?WSDL", $options);
$report = new SoapClient("$base/MailupReport.asmx?WSDL", $options);

// The integrations decode the string and read it with SimpleXML.
function doc($text) { return simplexml_load_string($text); }

$out = [];
$out['wrong_password'] = (int) doc($send->LoginFromId(['user' => $user, 'pwd' => 'bad', 'consoleId' => (int) $consoleId])->LoginFromIdResult)->errorCode;
$login = doc($send->LoginFromId(['user' => $user, 'pwd' => $password, 'consoleId' => (int) $consoleId])->LoginFromIdResult);
$key = (string) $login->accessKey;
$lists = doc($manage->GetLists(['accessKey' => $key])->GetListsResult);
$out['lists'] = [];
foreach ($lists->lists->list as $list) { $out['lists'][] = (string) $list->listName; }
$groups = doc($send->GetGroups(['accessKey' => $key, 'listID' => 1])->GetGroupsResult);
$out['groups'] = [];
foreach ($groups->groups->group as $group) { $out['groups'][] = (string) $group->groupName; }
$fields = doc($send->GetFields(['accessKey' => $key])->GetFieldsResult);
$out['first_field'] = (string) $fields->Fields->Field[0]['Name'];
$created = doc($send->CreateNewsletter(['accessKey' => $key, 'listID' => 1, 'subject' => 'From PHP', 'type' => 'HTML',
    'content' => '<p>Hello [email]</p>', 'options' => ['Option' => [['Key' => 'note', 'Value' => 'php']]]])->CreateNewsletterResult);
$out['created'] = (int) $created->newsletterID;
$code = doc($send->GetNewsletterCode(['accessKey' => $key, 'listID' => 1, 'newsletterID' => $out['created'], 'isTemplate' => false])->GetNewsletterCodeResult);
$out['code_subject'] = (string) $code->newsletterSubject;
$byMessage = doc($report->ReportByMessageEN(['accessKey' => $key, 'listID' => 1, 'messageID' => (int) $newsletter])->ReportByMessageENResult);
$out['opens'] = (int) $byMessage->Opens['Total'];
$out['unknown_list'] = (int) doc($manage->GetGroups(['accessKey' => $key, 'listID' => 99])->GetGroupsResult)->errorCode;
$out['logout'] = (int) doc($send->Logout(['accessKey' => $key])->LogoutResult)->errorCode;
$out['after_logout'] = (int) doc($report->ReportByMessageEN(['accessKey' => $key, 'listID' => 1, 'messageID' => (int) $newsletter])->ReportByMessageENResult)->errorCode;
echo json_encode($out), "\n";
